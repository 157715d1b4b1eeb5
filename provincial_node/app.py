"""Application factory of the provincial node."""

from __future__ import annotations

from typing import Any

from flask import Flask

from common.config import ProvincialConfig
from common.http import create_base_app, make_api
from provincial_node import MIGRATIONS_DIR, api
from provincial_node.jobs import start_scheduler


def create_app(config: ProvincialConfig) -> Flask:
    """Build the provincial node's Flask app from a typed config (nothing is created at import time)."""

    def health_extra() -> dict[str, Any]:
        return {"province_code": config.province_code}

    app = create_base_app(
        __name__, node="province", config=config, migrations_dir=MIGRATIONS_DIR, extra_health=health_extra
    )
    api.register(app, make_api(app, f"tmis provincial node {config.province_code}"))
    start_scheduler(app)
    return app
