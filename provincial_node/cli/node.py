"""``tmis province init`` and ``tmis province serve``."""

from __future__ import annotations

import os

import click

from common import migrations
from common.cli import configure_logging, open_engine, serve_wsgi
from common.config import validate_province_code
from common.db import redact_url
from common.errors import ConfigError
from common.protection import DataKeys
from provincial_node import MIGRATIONS_DIR, areas, datakeys
from provincial_node.accounts import provisioning
from provincial_node.app import build_runtime, create_app
from provincial_node.cli import _runtime
from provincial_node.config import ProvincialConfig
from provincial_node.context import Role
from provincial_node.jobs import start_scheduler
from provincial_node.tasks.runner import TaskRunner


@click.command("serve")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, threads: int) -> None:
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8100); run the scheduled jobs
    (sync round, request expiry) and the background tasks (TMIS_TASK_WORKERS at a time)."""
    config = _runtime.config(ctx)
    if not config.province_code:
        raise click.UsageError("TMIS_PROVINCE_CODE is required to serve a provincial node")
    configure_logging(config.log_level, config.log_format)
    secure_data_dir(config)
    rt = _runtime.runtime(ctx, config)
    with rt.session_factory() as s:
        left = datakeys.unprotected_rows(s)
    if left:
        raise ConfigError(
            f"{left} stored rows hold ID numbers in clear or lack their blind index: run "
            "`tmis province data-keys reencrypt` first (docs/security.md, upgrading a node)",
            details={"reason": "unprotected rows", "rows": left},
        )
    app = create_app(config, rt)
    scheduler = start_scheduler(rt, areas.jobs())
    tasks = TaskRunner(rt, config.task_workers).start() if config.task_workers else None
    try:
        serve_wsgi(app, config.bind_host, config.bind_port, threads)
    finally:
        scheduler.shutdown(wait=False)
        if tasks is not None:
            tasks.stop()


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
@click.option(
    "--second-factor-roles",
    default="sysadmin,infoadmin",
    show_default=True,
    help='roles that sign in with a security key (安全密钥), comma-separated; "" for none (a demo, a test bed)',
)
@click.pass_context
def init(
    ctx: click.Context,
    province_code: str,
    admin_username: str,
    admin_name: str,
    admin_password: str,
    unit_name: str | None,
    second_factor_roles: str,
) -> None:
    """Create a provincial node: database (migrations), province unit, first system administrator, the node's
    Ed25519 signing key (file mode 0600, path TMIS_SIGNING_KEY_PATH) and its data key (0600, TMIS_DATA_KEY_PATH);
    the data directory is made 0700 and its files 0600."""
    validate_province_code("--province-code", province_code)
    roles = tuple(r.strip() for r in second_factor_roles.split(",") if r.strip())
    unknown = [r for r in roles if r not in tuple(Role)]
    if unknown:
        raise click.BadParameter(f"unknown roles {', '.join(unknown)}", param_hint="--second-factor-roles")
    config = _runtime.config(ctx, province_code=province_code)
    provisioning.check_admin(admin_username, admin_password)  # every input checked before anything is created
    secure_data_dir(config)
    data_keys = DataKeys.generate()
    rt = build_runtime(config, open_engine(ctx, config.database), data_keys)
    migrations.upgrade(rt.engine, MIGRATIONS_DIR)
    done = provisioning.provision(
        rt,
        admin_username=admin_username,
        admin_name=admin_name,
        admin_password=admin_password,
        unit_name=unit_name,
        data_keys=data_keys,
        second_factor_roles=roles,
    )
    secure_data_dir(config)
    click.echo(f"initialised provincial node {done.province_code} ({done.unit_name})")
    click.echo(f"  database      {redact_url(config.database.url)}")
    click.echo(f"  signing key   {config.signing_key_path} (0600), key id {done.key_id}")
    click.echo(f"  data key      {config.data_key_file} (0600): back it up apart from the database")
    click.echo(f"  administrator {admin_username} — must change the password at first login")
    if roles:
        click.echo(
            f"  security keys required of: {', '.join(roles)}; the administrator's enrolment code: "
            f"tmis province second-factor enrolment-code --username {admin_username}"
        )


def secure_data_dir(config: ProvincialConfig) -> None:
    """The data directory 0700 and the files in it 0600 (SQLite database and its WAL, keys); files created from
    now on by this process are 0600 too (umask 077)."""
    os.umask(0o077)
    d = config.data_dir
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    for f in d.iterdir():
        if f.is_file():
            os.chmod(f, 0o600)


COMMANDS = (serve, init)
