"""``tmis province init`` and ``tmis province serve``."""

from __future__ import annotations

import click

from common import migrations
from common.cli import configure_logging, serve_wsgi
from common.config import validate_province_code
from common.db import redact_url
from provincial_node import MIGRATIONS_DIR, areas
from provincial_node.accounts import provisioning
from provincial_node.app import create_app
from provincial_node.cli import _runtime
from provincial_node.jobs import start_scheduler


@click.command("serve")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, threads: int) -> None:
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8100); run the scheduled jobs
    (sync round, request expiry)."""
    config = _runtime.config(ctx)
    if not config.province_code:
        raise click.UsageError("TMIS_PROVINCE_CODE is required to serve a provincial node")
    configure_logging(config.log_level, config.log_format)
    rt = _runtime.runtime(ctx, config)
    app = create_app(config, rt)
    scheduler = start_scheduler(rt, areas.jobs())
    try:
        serve_wsgi(app, config.bind_host, config.bind_port, threads)
    finally:
        scheduler.shutdown(wait=False)


@click.command("init")
@click.option("--province-code", required=True, help="2-digit code, e.g. 44 (66 = 新疆生产建设兵团)")
@click.option("--admin-username", required=True, help="the province's first system administrator")
@click.option("--admin-name", required=True, help="the administrator's real name (实名)")
@click.option(
    "--admin-password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="initial password (must be changed at first login)",
)
@click.option("--unit-name", default=None, help="name of the province unit (default: <province>教育厅)")
@click.pass_context
def init(
    ctx: click.Context,
    province_code: str,
    admin_username: str,
    admin_name: str,
    admin_password: str,
    unit_name: str | None,
) -> None:
    """Create a provincial node: database (migrations), province unit, first system administrator and the
    node's Ed25519 signing key (file mode 0600, path TMIS_SIGNING_KEY_PATH)."""
    validate_province_code("--province-code", province_code)
    config = _runtime.config(ctx, province_code=province_code)
    provisioning.check_admin(admin_username, admin_password)  # every input checked before anything is created
    config.data_dir.mkdir(parents=True, exist_ok=True)
    rt = _runtime.runtime(ctx, config)
    migrations.upgrade(rt.engine, MIGRATIONS_DIR)
    done = provisioning.provision(
        rt, admin_username=admin_username, admin_name=admin_name, admin_password=admin_password, unit_name=unit_name
    )
    click.echo(f"initialised provincial node {done.province_code} ({done.unit_name})")
    click.echo(f"  database      {redact_url(config.database.url)}")
    click.echo(f"  signing key   {config.signing_key_path} (0600), key id {done.key_id}")
    click.echo(f"  administrator {admin_username} — must change the password at first login")


COMMANDS = (serve, init)
