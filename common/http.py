"""Flask plumbing shared by both nodes: the JSON error contract, one DB session per request, health.

* :func:`register_error_handlers` maps every :class:`~common.errors.TmisError` to its JSON body
  ``{code, error, message, details}``; HTTP errors raised by Flask/werkzeug (404, 405, 413 …) and
  unexpected exceptions get the same shape, so a client never has to parse HTML.
* :func:`init_db_session` gives each request one SQLAlchemy session (``get_session()``): committed after a
  successful response (status < 400), rolled back otherwise (unless the view called
  :func:`keep_writes_on_error`), always closed. Services receive the session and never commit.
* :class:`NodeRuntime` is what a node's app holds for its lifetime; :func:`runtime_of` finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, jsonify
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from common.catalogue import Catalogue
from common.errors import ErrorCode, FieldError, StorageConflictError, StorageError, TmisError, error_body

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


def json_error(code: str, status: int, message: str, details: dict[str, Any] | None = None) -> Any:
    response = jsonify(error_body(code, status, message, details))
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(TmisError)
    def _tmis(e: TmisError) -> Any:
        if e.http_status >= 500:
            logger.error("request failed: %s", e, exc_info=e)
        return json_error(e.code, e.http_status, e.message, e.details)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Any:
        status = e.code or 500
        return json_error(_HTTP_CODES.get(status, ErrorCode.INTERNAL), status, e.description or e.name)

    @app.errorhandler(IntegrityError)
    def _integrity(e: IntegrityError) -> Any:
        err = StorageConflictError("the database refused the write (integrity constraint)")
        return json_error(err.code, err.http_status, err.message)

    @app.errorhandler(SQLAlchemyError)
    def _storage(e: SQLAlchemyError) -> Any:
        logger.error("database error", exc_info=e)
        err = StorageError("the database is unavailable")
        return json_error(err.code, err.http_status, err.message)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        logger.exception("unhandled error")
        return json_error(ErrorCode.INTERNAL, 500, "internal error; the operator log has the details")


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
            except SQLAlchemyError:
                session.rollback()
                session.close()
                raise
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


def get_session() -> Session:
    """The request's session (created on first use)."""
    if "tmis_db" not in g:
        g.tmis_db = runtime_of(current_app).session_factory()
    return g.tmis_db


def create_base_app(
    import_name: str,
    *,
    node: str,
    runtime: NodeRuntime,
    migrations_dir: Any,
    extra_health: Callable[[], dict[str, Any]] | None = None,
    collectors: Iterable[Any] = (),
    checks: Iterable[Any] = (),
) -> Flask:
    """The Flask app both node factories start from: the node's runtime, session per request, errors, health,
    metrics and request ids (:mod:`common.metrics`; ``collectors`` and ``checks`` are the node's own).

    Nothing is created at import time; the engine belongs to the runtime the caller built.
    """
    from common import metrics, migrations

    app = Flask(import_name)
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

    @app.get("/health")
    def health() -> Any:
        """Schema state: 200 when the database answers and is at the code's head revision (``/health/ready``
        runs every check of the node, ``/health/live`` only says the process serves)."""
        try:
            current = migrations.current_revision(engine)
        except SQLAlchemyError:
            logger.exception("health: the database does not answer")
            return json_error(ErrorCode.STORAGE_UNAVAILABLE, 503, "database unreachable", {"reason": "unreachable"})
        head = migrations.head_revision(migrations_dir)
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
            return json_error(
                _HTTP_CODES.get(status, ErrorCode.INTERNAL),
                status,
                data.get("message") or error.description or error.name,
                details,
            )

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
