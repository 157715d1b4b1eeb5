"""Application factory of the provincial node: builds the runtime from the config, the API from the areas.
Nothing is created at import time and nothing is started (the scheduler is started by ``serve``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy.engine import Engine

from common.catalogue import load_catalogue
from common.db import create_db_engine, make_session_factory
from common.http import create_base_app
from common.protection import DataKeys, install
from provincial_node import MIGRATIONS_DIR, areas
from provincial_node.accounts import passwords
from provincial_node.api import register_api
from provincial_node.config import ProvincialConfig
from provincial_node.context import ProvinceRuntime, Settings
from provincial_node.sync import metrics as sync_metrics
from provincial_node.teacher_files.custom_fields import catalogue_for
from provincial_node.web import register_web

STATIC = Path(__file__).resolve().parent / "web" / "static"


def build_runtime(
    config: ProvincialConfig, engine: Engine | None = None, data_keys: DataKeys | None = None
) -> ProvinceRuntime:
    """The node for its lifetime (the app, a CLI command and tests share this): engine (carrying the node's data
    keys, which protect ID numbers at rest: ``data_keys`` or the key file ``TMIS_DATA_KEY_PATH``), sessions,
    catalogue, the custom-indicator extension and the areas' inbox handlers."""
    engine = engine or create_db_engine(config.database)
    install(engine, data_keys or DataKeys.load(config.data_key_file))
    return ProvinceRuntime(
        config=config,
        engine=engine,
        session_factory=make_session_factory(engine),
        catalogue=load_catalogue(),
        extend_catalogue=catalogue_for,
        inbox=areas.inbox_dispatch(),
        tasks=areas.task_handlers(),
        settings=Settings.from_config(config),
    )


def create_app(config: ProvincialConfig, runtime: ProvinceRuntime | None = None) -> Flask:
    """Build the provincial node's Flask app from a typed config."""
    rt = runtime or build_runtime(config)
    app = create_base_app(
        __name__,
        node="province",
        runtime=rt,
        migrations_dir=MIGRATIONS_DIR,
        static_folder=str(STATIC),
        health_detail=False,  # /health says up or down, nothing an unauthenticated caller could fingerprint
        proxy_hops=config.proxy_hops,
        collectors=[sync_metrics.collector(rt)],
        checks=sync_metrics.checks(rt),
    )
    register_api(app, areas.blueprints(), f"tmis provincial node {config.province_code}")
    register_web(app, rt, areas.pages())
    passwords.dummy_hash()  # now, not at the first login with an unknown username (same time as any login)
    return app
