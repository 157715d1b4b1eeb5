"""Application factory of the national node. Nothing is created at import time and nothing is started
(the scheduler is started by ``serve``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine
from werkzeug.exceptions import RequestEntityTooLarge

from common.catalogue import load_catalogue
from common.db import create_db_engine, make_session_factory
from common.errors import ErrorCode
from common.http import create_base_app, json_error
from national_node import MIGRATIONS_DIR, areas
from national_node.api import register_api
from national_node.config import NationalConfig
from national_node.registry import metrics as registry_metrics
from national_node.runtime import NationalRuntime


def build_runtime(config: NationalConfig, engine: Engine | None = None) -> NationalRuntime:
    engine = engine or create_db_engine(config.database)
    return NationalRuntime(
        config=config, engine=engine, session_factory=make_session_factory(engine), catalogue=load_catalogue()
    )


def create_app(config: NationalConfig, runtime: NationalRuntime | None = None) -> Flask:
    """Build the national node's Flask app from a typed config."""
    rt = runtime or build_runtime(config)
    app = create_base_app(
        __name__,
        node="national",
        runtime=rt,
        migrations_dir=MIGRATIONS_DIR,
        collectors=[registry_metrics.collector(rt)],
        checks=registry_metrics.checks(rt),
    )
    # The largest body any route takes; a larger one is refused with the one code of every body limit.
    app.config["MAX_CONTENT_LENGTH"] = config.max_batch_bytes
    register_api(app, areas.blueprints())

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e: RequestEntityTooLarge) -> Any:
        limit = config.max_batch_bytes
        return json_error(ErrorCode.PROTOCOL_LIMIT_EXCEEDED, 413, f"request body above {limit} bytes", {"limit": limit})

    return app
