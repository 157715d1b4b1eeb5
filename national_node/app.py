"""Application factory of the national node."""

from __future__ import annotations

from flask import Flask

from common.config import NationalConfig
from common.http import create_base_app, make_api
from national_node import MIGRATIONS_DIR, api
from national_node.services import ledger


def create_app(config: NationalConfig) -> Flask:
    """Build the national node's Flask app from a typed config (nothing is created at import time)."""
    app = create_base_app(__name__, node="national", config=config, migrations_dir=MIGRATIONS_DIR)
    app.config["MAX_CONTENT_LENGTH"] = config.max_batch_bytes + 1024
    app.extensions["tmis_keys"] = lambda: ledger.load_keys(config.data_dir / "keys")
    api.register(app, make_api(app, "tmis national node"))
    return app
