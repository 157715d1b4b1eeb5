"""``tmis national …``: commands of the national node (国家级节点)."""

from __future__ import annotations

import click

from common.cli import db_group, serve_wsgi
from common.config import national_config_from_env
from national_node import MIGRATIONS_DIR


@click.group()
def national() -> None:
    """National node (国家级节点): database, server, province registry, acceptance log."""


national.add_command(db_group(MIGRATIONS_DIR, national_config_from_env))


@national.command("serve")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, threads: int) -> None:
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8000)."""
    from national_node.app import create_app

    config = national_config_from_env(ctx.obj["env"])
    serve_wsgi(create_app(config), config.bind_host, config.bind_port, threads)
