"""Observability on both nodes (docs/operations.md): Prometheus metrics at /metrics (rounds and phases, data
lag, batches and records accepted and refused, request latency by route, trust expiry), a request id on every
answer and log line, liveness and readiness that say what is wrong without leaking internals."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re

from prometheus_client.parser import text_string_to_metric_families

from common.http import runtime_of
from common.metrics import JsonFormatter, RequestIdFilter
from provincial_node.app import build_runtime, create_app
from provincial_node.config import config_from_env
from tests.integration.federation import effective_teacher
from tests.integration.test_sync_inprocess import federation  # noqa: F401 - the fixture


@contextlib.contextmanager
def province_app(node):
    """The province's own app over its own engine (disposed afterwards)."""
    app = create_app(config_from_env(node.env, testing=True), build_runtime(config_from_env(node.env)))
    try:
        yield app
    finally:
        runtime_of(app).engine.dispose()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_on_both_nodes_after_a_round(federation):  # noqa: F811
    app, transport, p44, p11, national = federation
    effective_teacher(p44, "080")
    effective_teacher(p44, "081")
    assert p44.client.run_round().status == "ok"
    bad = app.test_client().post("/api/v1/provinces/44/batches", data=b"x\n", headers={"X-Tmis-Province": "44"})
    assert bad.status_code == 401
    nat = _samples(app.test_client().get("/metrics").get_data(as_text=True))
    assert nat[("tmis_province_last_seq", (("province", "44"),))] == 1
    assert nat[("tmis_intake_batches_accepted_total", (("province", "44"),))] == 1
    assert nat[("tmis_intake_records_accepted_total", (("province", "44"),))] == 2
    assert ("tmis_province_data_lag_seconds", (("province", "44"),)) in nat
    assert nat[("tmis_trust_expires_timestamp_seconds", ())] > 0
    assert nat[("tmis_collector_up", (("collector", "national"),))] == 1
    route = "/api/v1/provinces/<code>/batches"
    ok_key = ("tmis_http_requests_total", (("method", "POST"), ("route", route), ("status", "200")))
    assert nat[ok_key] >= 1
    assert nat[("tmis_http_request_duration_seconds_count", (("method", "POST"), ("route", route)))] >= 2
    refused = (
        "tmis_intake_refused_total",
        (("code", "protocol_signature_invalid"), ("province", "44"), ("route", route)),
    )
    assert nat[refused] == 1
    with province_app(p44) as papp:
        prov = _samples(papp.test_client().get("/metrics").get_data(as_text=True))
        effective_teacher(p44, "082")  # waiting: the data lag grows from its creation
        later = _samples(papp.test_client().get("/metrics").get_data(as_text=True))
    assert prov[("tmis_sync_rounds_total", (("status", "ok"),))] == 1
    assert prov[("tmis_sync_batches_accepted_total", ())] == 1
    assert prov[("tmis_sync_records_accepted_total", ())] == 2
    assert prov[("tmis_sync_data_lag_seconds", ())] == 0
    assert prov[("tmis_sync_outbox_pending", ())] == 0
    assert {k[1][0][1] for k in prov if k[0] == "tmis_sync_last_round_phase_seconds"} >= {
        "keys",
        "build",
        "push",
        "pull",
    }
    assert later[("tmis_sync_outbox_pending", ())] == 1 and later[("tmis_sync_data_lag_seconds", ())] >= 0


def test_request_id_on_the_answer_and_the_log_line(federation, caplog):  # noqa: F811
    app, *_ = federation
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="tmis.access"):
        r = client.get("/api/v1/trust", headers={"X-Request-Id": "ops-4711"})
        other = client.get("/api/v1/trust", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"] == "ops-4711"
    assert re.fullmatch(r"[0-9a-f]{32}", other.headers["X-Request-Id"])  # an unusable id is replaced
    record = next(x for x in caplog.records if x.name == "tmis.access" and x.route == "/api/v1/trust")
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/api/v1/trust" and line["status"] == 200 and line["method"] == "GET"
    assert "request_id" in line


def test_liveness_and_readiness_say_what_is_wrong_without_internals(federation, tmp_path):  # noqa: F811
    app, transport, p44, p11, national = federation
    client = app.test_client()
    assert client.get("/health/live").json["status"] == "ok"
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.json
    assert set(ready.json["checks"]) == {"database", "schema", "keys", "trust"}
    keys_dir = runtime_of(app).keys_dir
    log_key = keys_dir / "log.key"
    hidden = tmp_path / "log.key.moved"
    os.rename(log_key, hidden)
    try:
        broken = client.get("/health/ready")
    finally:
        os.rename(hidden, log_key)
    assert broken.status_code == 503, (broken.json, keys_dir, os.listdir(keys_dir))
    assert broken.json["checks"]["keys"] == {"ok": False, "reason": "the node's key files are missing or unreadable"}
    assert str(keys_dir) not in broken.get_data(as_text=True)  # no path, no exception text
    config = config_from_env(p44.env, testing=True)
    with province_app(p44) as papp:
        assert papp.test_client().get("/health/ready").status_code == 200
        os.chmod(config.signing_key_path, 0o644)
        try:
            r = papp.test_client().get("/health/ready")
        finally:
            os.chmod(config.signing_key_path, 0o600)
    assert r.status_code == 503
    assert r.json["checks"]["signing_key"]["reason"].startswith("the signing key file is missing, unreadable")
    assert str(config.signing_key_path) not in r.get_data(as_text=True)
