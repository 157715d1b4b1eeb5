"""Application factory of the national node."""

from __future__ import annotations

from flask import Flask

from common.config import NationalConfig
from common.http import create_base_app
from national_node import MIGRATIONS_DIR


def create_app(config: NationalConfig) -> Flask:
    """Build the national node's Flask app from a typed config (nothing is created at import time)."""
    return create_base_app(__name__, node="national", config=config, migrations_dir=MIGRATIONS_DIR)
