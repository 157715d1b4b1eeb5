"""Flask plumbing shared by both nodes: the JSON error contract, one DB session per request, health.

* :func:`register_error_handlers` maps every :class:`~common.errors.TmisError` to its JSON body
  ``{code, error, message, details}``; HTTP errors raised by Flask/werkzeug (404, 405, 413 …) and
  unexpected exceptions get the same shape, so a client never has to parse HTML.
* :func:`init_db_session` gives each request one SQLAlchemy session (``get_session()``): committed after a
  successful response (status < 400), rolled back otherwise (unless the view called
  :func:`keep_writes_on_error`), always closed. Services receive the session and never commit.
* :class:`NodeRuntime` is what a node's app holds for its lifetime; :func:`runtime_of` finds it.
* :func:`harden` puts the security headers on every answer (a page that needs its own Content-Security-Policy
  sets it and keeps it) and, behind ``proxy_hops`` TLS-terminating reverse proxies, trusts their
  ``X-Forwarded-*`` headers (werkzeug's ProxyFix) so the scheme, the client address and Secure cookies are right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, g, jsonify, request
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.routing import ValidationError as RouteMismatch

from common.catalogue import Catalogue
from common.db import begin_write, storage_error
from common.errors import ErrorCode, FieldError, StorageBusyError, TmisError, error_body
from common.schemas import MAX_ID

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_FAILED,
}


class IdConverter(IntegerConverter):
    """``<int:…>`` in a URL: an id of an INTEGER column, 0..MAX_ID; a larger number (``2**70``) matches no route,
    so it answers 404 like any id that does not exist, never a database error."""

    def __init__(
        self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = None, signed: bool = False
    ) -> None:
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)

    def to_python(self, value: str) -> Any:
        if len(value) > len(str(MAX_ID)):  # before int(): a 5000-digit number is refused by int() itself
            raise RouteMismatch()
        return super().to_python(value)


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value for a download named ``filename`` (Chinese names included): an ASCII
    fallback and the RFC 6266/5987 ``filename*`` form. Header values must be Latin-1 on the wire; a raw
    Chinese name there makes the WSGI server drop the answer."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def json_error(code: str, status: int, message: str, details: dict[str, Any] | None = None) -> Any:
    response = jsonify(error_body(code, status, message, details))
    response.status_code = status
    return response


def http_error_parts(error: HTTPException) -> tuple[str, int, str, dict[str, Any]]:
    """(code, status, message, details) of an HTTP error; a request that failed its schema (webargs) lists every
    failing field as a :class:`FieldError`."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    details: dict[str, Any] = {}
    messages = data.get("messages") or data.get("errors")
    if messages:  # webargs: {"json": {"field": ["message", …]}}
        entries = []
        for location, fields in messages.items():
            for field, msgs in fields.items() if isinstance(fields, dict) else [("", fields)]:
                for m in msgs if isinstance(msgs, list) else [msgs]:
                    entries.append(FieldError(location, field, str(m), str(m)).to_json())
        details["errors"] = entries
    message = data.get("message") or error.description or error.name
    return _HTTP_CODES.get(status, ErrorCode.INTERNAL), status, message, details


def tmis_error_response(e: TmisError) -> Any:
    """The JSON answer of a tmis error; a busy database also says when to retry (``Retry-After``)."""
    response = json_error(e.code, e.http_status, e.message, e.details)
    if isinstance(e, StorageBusyError):
        response.headers["Retry-After"] = str(e.retry_after)
    return response


@dataclass(frozen=True)
class PageErrors:
    """How a node with web pages answers errors of page requests: ``wants_page()`` says whether the current
    request is a page's, ``render(status, code, error, message)`` makes the HTML answer (``error`` is the
    TmisError when there is one). API requests keep the JSON contract."""

    wants_page: Callable[[], bool]
    render: Callable[[int, str, TmisError | None, str], Any]


def register_error_handlers(app: Flask, pages: PageErrors | None = None) -> None:
    def answer(code: str, status: int, message: str, details: dict[str, Any] | None = None, error: Any = None) -> Any:
        if pages is not None and pages.wants_page():
            response = app.make_response(pages.render(status, str(code), error, message))
            if isinstance(error, StorageBusyError):
                response.headers["Retry-After"] = str(error.retry_after)
            return response
        if error is not None:
            return tmis_error_response(error)
        return json_error(code, status, message, details)

    @app.errorhandler(TmisError)
    def _tmis(e: TmisError) -> Any:
        if e.http_status >= 500 and not isinstance(e, StorageBusyError):
            logger.error("request failed: %s", e, exc_info=e)
        return answer(e.code, e.http_status, e.message, e.details, e)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Any:
        return answer(*http_error_parts(e))

    @app.errorhandler(SQLAlchemyError)
    def _storage(e: SQLAlchemyError) -> Any:
        err = storage_error(e)
        if isinstance(err, StorageBusyError):
            logger.warning("database busy: %s", e.orig if hasattr(e, "orig") else e)
        elif err.http_status >= 500:
            logger.error("database error", exc_info=e)
        err.details.pop("reason", None)  # the operator log has it; the client gets the code
        return answer(err.code, err.http_status, err.message, err.details, err)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        logger.exception("unhandled error")
        return answer(ErrorCode.INTERNAL, 500, "internal error; the operator log has the details")


def use_page_errors(app: Flask, pages: PageErrors) -> None:
    """Answer errors of page requests with pages (the handlers are registered again, now with ``pages``)."""
    register_error_handlers(app, pages)


@dataclass(frozen=True)
class NodeRuntime:
    """What a node's app holds for its lifetime (each node subclasses it with its own parts). It lives in
    ``app.extensions``; :func:`runtime_of` is the one place that looks it up."""

    config: Any
    engine: Engine
    session_factory: sessionmaker[Session]
    catalogue: Catalogue


_RUNTIME = "tmis"


def runtime_of(app: Flask) -> NodeRuntime:
    return app.extensions[_RUNTIME]


def init_db_session(app: Flask) -> None:
    @app.after_request
    def _finish(response: Any) -> Any:
        session: Session | None = g.pop("tmis_db", None)
        if session is not None:
            try:
                if response.status_code < 400 or g.pop("tmis_keep_writes", False):
                    session.commit()
                else:
                    session.rollback()
            except SQLAlchemyError as e:  # the commit failed: nothing was written, say so (never a 500)
                session.rollback()
                session.close()
                err = storage_error(e)
                logger.warning("commit failed: %s", e)
                err.details.pop("reason", None)
                return tmis_error_response(err)
            session.close()
        return response

    @app.teardown_request
    def _teardown(exc: BaseException | None) -> None:
        session: Session | None = g.pop("tmis_db", None)
        if session is not None:  # the request failed before after_request ran
            session.rollback()
            session.close()


def keep_writes_on_error() -> None:
    """Commit this request's writes even though it answers with an error: a failed login's count, the
    evidence of an equivocation. The one exception to "an error rolls back"; say why where it is used."""
    g.tmis_keep_writes = True


def end_request_transaction() -> None:
    """Commit what this request wrote so far and end its transaction (on SQLite: release the write lock), for a
    view that goes on with long work in transactions of its own (a sync round run on demand); holding the
    request's lock meanwhile would make that work wait for itself."""
    session: Session | None = g.get("tmis_db")
    if session is not None:
        session.commit()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session() -> Session:
    """The request's session (created on first use). A request that may write (any method but GET, HEAD and
    OPTIONS) declares it when its transaction begins (:func:`common.db.begin_write`: on SQLite it waits for the
    write lock up front, and a busy database answers 503 ``storage_busy`` with ``Retry-After``)."""
    if "tmis_db" not in g:
        session = g.tmis_db = runtime_of(current_app).session_factory()
        if request.method not in READ_METHODS:
            begin_write(session)
    return g.tmis_db


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
# for JSON answers and downloads; a page shell sets its own policy (scripts and styles from 'self')
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def harden(app: Flask, proxy_hops: int = 0) -> None:
    """Security headers on every answer; ``Cache-Control: no-store`` unless the view chose caching;
    HSTS when the request came over TLS; the reverse proxies' headers trusted when there are any."""
    from flask import request

    if proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops, x_host=proxy_hops, x_port=proxy_hops
        )
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    @app.after_request
    def _headers(response: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        response.headers.remove("Server")
        return response


def create_base_app(
    import_name: str,
    *,
    node: str,
    runtime: NodeRuntime,
    migrations_dir: Any,
    extra_health: Callable[[], dict[str, Any]] | None = None,
    static_folder: str | None = None,
    health_detail: bool = True,
    proxy_hops: int = 0,
    collectors: Iterable[Any] = (),
    checks: Iterable[Any] = (),
) -> Flask:
    """The Flask app both node factories start from: the node's runtime, session per request, errors, health,
    security headers (:func:`harden`), metrics and request ids (:mod:`common.metrics`; ``collectors`` and
    ``checks`` are the node's own).

    ``health_detail=False``: ``/health`` answers only ``{"status": "up"}`` (200) or ``{"status": "down"}``
    (503) — no versions or revisions for an unauthenticated caller to fingerprint. Nothing is created at import
    time; the engine belongs to the runtime the caller built.
    """
    from common import metrics, migrations

    app = Flask(import_name, static_folder=static_folder, static_url_path="/static" if static_folder else None)
    app.url_map.converters["int"] = IdConverter
    app.config["TESTING"] = runtime.config.testing
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[_RUNTIME] = runtime
    engine, catalogue = runtime.engine, runtime.catalogue

    def database() -> str | None:
        try:
            migrations.current_revision(engine)
        except SQLAlchemyError:
            return "the database does not answer"
        return None

    def schema() -> str | None:
        try:
            current = migrations.current_revision(engine)
        except SQLAlchemyError:
            return "unknown: the database does not answer"
        if current != migrations.head_revision(migrations_dir):
            return f"the database schema is not at the code's revision: run `tmis {_CLI[node]} db upgrade`"
        return None

    metrics.install(
        app,
        node,
        collectors,
        [metrics.Check("database", database), metrics.Check("schema", schema), *checks],
    )
    init_db_session(app)
    register_error_handlers(app)
    harden(app, proxy_hops)

    @app.get("/health")
    def health() -> Any:
        """Schema state: 200 when the database answers and is at the code's head revision (``/health/ready``
        runs every check of the node, ``/health/live`` only says the process serves)."""
        try:
            current = migrations.current_revision(engine)
        except SQLAlchemyError:
            logger.exception("health: the database does not answer")
            if not health_detail:
                return jsonify({"status": "down"}), 503
            return json_error(ErrorCode.STORAGE_UNAVAILABLE, 503, "database unreachable", {"reason": "unreachable"})
        head = migrations.head_revision(migrations_dir)
        if not health_detail:
            return jsonify({"status": "up" if current == head else "down"}), (200 if current == head else 503)
        body = {
            "status": "ok" if current == head else "migrations_pending",
            "node": node,
            "db_revision": current,
            "code_revision": head,
            "catalogue_version": catalogue.version,
        }
        if extra_health:
            body.update(extra_health())
        return jsonify(body), (200 if current == head else 503)

    return app


_CLI = {"national": "national", "provincial": "province", "province": "province"}


def make_api(app: Flask, title: str, version: str = "v1") -> Any:
    """flask-smorest ``Api`` whose errors follow the tmis contract; the OpenAPI document is served at
    ``/api/openapi.json`` (a stable URL; no UI is bundled — point any OpenAPI viewer at it)."""
    import flask_smorest
    import marshmallow as ma

    class ErrorBody(ma.Schema):
        code = ma.fields.String(metadata={"description": "stable error code (docs/errors.md)"})
        error = ma.fields.String(metadata={"description": "HTTP reason phrase"})
        message = ma.fields.String()
        details = ma.fields.Dict()

    class TmisApi(flask_smorest.Api):
        ERROR_SCHEMA = ErrorBody

        def handle_http_exception(self, error: HTTPException) -> Any:
            return json_error(*http_error_parts(error))

    app.config.update(
        {
            "API_TITLE": title,
            "API_VERSION": version,
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/api",
            "OPENAPI_JSON_PATH": "openapi.json",
        }
    )
    api = TmisApi(
        app,
        spec_kwargs={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    return api
