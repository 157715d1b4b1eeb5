"""Observability shared by both nodes: Prometheus metrics at ``/metrics``, a request id on every request and
log line, and liveness/readiness endpoints that say what is wrong without leaking internals.

* **Metrics** (``prometheus_client``, the Prometheus project's own client): each app has its own registry
  (:class:`NodeMetrics`: request count and latency by route, the node's own counters) and serves it together
  with the process registry (:data:`PROCESS`: job durations and failures, counted where the job runs) and the
  node's **database collectors** — state read from the node's tables at scrape time (rounds and their phases,
  backlog, data lag, batches and records accepted and refused, trust expiry), so a round run by
  ``tmis province sync run`` in another process is seen as well as one run by ``serve``. A collector that
  cannot read the database reports ``tmis_collector_up{collector} 0`` instead of failing the scrape.
* **Request id**: ``X-Request-Id`` from the caller when it is 1–64 characters of ``[A-Za-z0-9._-]``, a new one
  otherwise; answered in the same header and put on every log line of the request (:class:`RequestIdFilter`).
  ``TMIS_LOG_FORMAT=json`` writes one JSON object per line (time, level, logger, message, request_id, and the
  access line's method, route, status, duration).
* **Health**: ``/health/live`` answers 200 while the process serves; ``/health/ready`` runs the node's
  checks (database reachable, schema at the code's revision, and the node's own: keys, enrolment, trust
  expiry) and answers 200 or 503 with ``{status, checks: {name: {ok, reason}}}`` — each reason a fixed
  sentence, never an exception text, URL or path.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)
access_log = logging.getLogger("tmis.access")

PROCESS = CollectorRegistry(auto_describe=True)  # what this process does outside requests (jobs)
JOB_SECONDS = Histogram(
    "tmis_job_duration_seconds", "Duration of scheduled jobs and sync rounds run by this process", ["job"],
    registry=PROCESS, buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)  # fmt: skip
JOB_FAILURES = Counter("tmis_job_failures_total", "Jobs that raised or reported failure", ["job"], registry=PROCESS)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
EXTENSION = "tmis_metrics"


def observe_job(job: str, seconds: float, ok: bool) -> None:
    JOB_SECONDS.labels(job).observe(seconds)
    if not ok:
        JOB_FAILURES.labels(job).inc()


class DatabaseCollector(Collector):
    """Metrics read from a node's tables at scrape time: ``read()`` yields metric families; a failure to read is
    reported as ``tmis_collector_up{collector} 0`` (logged), never as a failed scrape."""

    def __init__(self, name: str, read: Callable[[], Iterable[Any]]) -> None:
        self.name, self.read = name, read

    def describe(self) -> Iterable[Any]:
        """Nothing to describe ahead: registering must not read the database (it may not be migrated yet)."""
        return []

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily(
            "tmis_collector_up", "1 when the collector could read the database", labels=["collector"]
        )
        try:
            families = list(self.read())
        except Exception:  # a scrape must answer; the operator log has the reason
            logger.exception("metrics collector %s failed", self.name)
            up.add_metric([self.name], 0)
            yield up
            return
        up.add_metric([self.name], 1)
        yield up
        yield from families


@dataclass
class Check:
    """One readiness check: ``run()`` returns None when it holds, else the reason (a fixed sentence)."""

    name: str
    run: Callable[[], str | None]


@dataclass
class NodeMetrics:
    node: str
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    checks: list[Check] = field(default_factory=list)

    def counter(self, name: str, doc: str, labels: list[str]) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)


def metrics_of(app: Flask) -> NodeMetrics:
    return app.extensions[EXTENSION]


def request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or ``-``) on every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id()
        record.request_id = rid or "-"
        record.request_suffix = f" request_id={rid}" if rid else ""  # text lines: only inside a request
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, and any ``extra`` fields the
    access line adds."""

    FIELDS = ("method", "route", "path", "status", "duration_ms", "province")

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        out.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_log_format(fmt: str) -> None:
    """Install the request-id filter on the root handlers and, for ``json``, the JSON formatter."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
        if fmt == "json":
            handler.setFormatter(JsonFormatter())
        else:
            text = "%(asctime)sZ %(levelname)s %(name)s: %(message)s%(request_suffix)s"
            handler.setFormatter(logging.Formatter(text))


def install(app: Flask, node: str, collectors: Iterable[Collector] = (), checks: Iterable[Check] = ()) -> NodeMetrics:
    """Metrics, request ids and the health endpoints on ``app``."""
    registry = CollectorRegistry(auto_describe=True)
    m = NodeMetrics(
        node=node,
        registry=registry,
        requests=Counter(
            "tmis_http_requests_total", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "tmis_http_request_duration_seconds", "HTTP request latency by route", ["route", "method"],
            registry=registry, buckets=LATENCY_BUCKETS,
        ),
        checks=list(checks),
    )  # fmt: skip
    for c in collectors:
        registry.register(c)
    app.extensions[EXTENSION] = m

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Any) -> Any:
        started = g.get("request_started")
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        if started is not None:
            seconds = time.perf_counter() - started
            m.requests.labels(route, request.method, str(response.status_code)).inc()
            m.latency.labels(route, request.method).observe(seconds)
            access_log.info(
                "%s %s %s %.1fms",
                request.method,
                route,
                response.status_code,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                    "province": g.get("province"),
                },
            )
        if g.get("request_id"):
            response.headers["X-Request-Id"] = g.request_id
        return response

    @app.get("/metrics")
    def metrics() -> Any:
        """Prometheus text format: this app's registry and this process's (jobs)."""
        body = generate_latest(registry) + generate_latest(PROCESS)
        return Response(body, mimetype=CONTENT_TYPE_LATEST)

    @app.get("/health/live")
    def live() -> Any:
        """Liveness: the process serves requests."""
        return jsonify({"status": "ok", "node": node})

    @app.get("/health/ready")
    def ready() -> Any:
        """Readiness: every check of the node holds (503 and the failing checks' reasons otherwise)."""
        results: dict[str, dict[str, Any]] = {}
        for check in m.checks:
            try:
                reason = check.run()
            except Exception:  # a check that breaks is a failing check; the operator log has the details
                logger.exception("readiness check %s failed", check.name)
                reason = "the check could not run (see the operator log)"
            results[check.name] = {"ok": reason is None, "reason": reason or ""}
        ok = all(r["ok"] for r in results.values())
        return jsonify({"status": "ready" if ok else "not_ready", "node": node, "checks": results}), (
            200 if ok else 503
        )

    return m
