"""``tmis province …``: commands of the provincial node (省级节点)."""

from __future__ import annotations

import click

from common.cli import db_group, serve_wsgi
from common.config import provincial_config_from_env
from provincial_node import MIGRATIONS_DIR


@click.group()
def province() -> None:
    """Provincial node (省级节点): database, server, accounts, files, sync."""


province.add_command(db_group(MIGRATIONS_DIR, provincial_config_from_env))


@province.command("serve")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, threads: int) -> None:
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8100)."""
    from provincial_node.app import create_app

    config = provincial_config_from_env(ctx.obj["env"])
    if not config.province_code:
        raise click.UsageError("TMIS_PROVINCE_CODE is required to serve a provincial node")
    serve_wsgi(create_app(config), config.bind_host, config.bind_port, threads)
