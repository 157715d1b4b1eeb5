"""``tmis province …``: commands of the provincial node (省级节点)."""

from __future__ import annotations

import click

from common.cli import configure_logging, db_group, open_engine, serve_wsgi, tune_gc_for_batches
from common.config import provincial_config_from_env, validate_province_code
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
    configure_logging(config.log_level)
    serve_wsgi(create_app(config), config.bind_host, config.bind_port, threads)


@province.command("init")
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
    from common import migrations
    from common.catalogue import load_catalogue
    from common.db import make_session_factory, redact_url, session_scope
    from common.divisions import lookup
    from common.errors import ConfigError
    from common.keyfile import write_private_key
    from provincial_node.models import NodeSetting
    from provincial_node.services import accounts, audit, units
    from sync_protocol.keys import Signer

    validate_province_code("--province-code", province_code)
    config = provincial_config_from_env(ctx.obj["env"], province_code=province_code)
    catalogue = load_catalogue()
    accounts.check_password_strength(admin_password)
    accounts.check_username(admin_username)  # every input checked before anything is created
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(ctx, config.database)
    migrations.upgrade(engine, MIGRATIONS_DIR)
    factory = make_session_factory(engine)
    with factory() as s:
        if s.get(NodeSetting, "province_code") is not None:
            raise ConfigError(
                "this database already holds an initialised node",
                details={
                    "variable": "TMIS_DATABASE_URL",
                    "value": redact_url(config.database.url),
                    "reason": "initialised",
                },
            )
    if config.signing_key_path.exists():
        raise ConfigError(
            f"key file {config.signing_key_path} already exists; refusing to overwrite it",
            details={"variable": "TMIS_SIGNING_KEY_PATH", "value": str(config.signing_key_path), "reason": "exists"},
        )
    division = lookup(province_code + "0000")
    name = unit_name or f"{division.name if division else province_code}教育厅"
    signer = Signer.generate()
    with session_scope(factory) as s:
        unit = units.create_unit(s, catalogue, {"code": province_code + "0000", "name": name, "level": "province"})
        accounts.create_account(
            s, None, username=admin_username, real_name=admin_name, unit=unit, role="sysadmin", password=admin_password
        )
        for key, value in (
            ("province_code", province_code),
            ("signing_key_id", signer.keyid),
            ("signing_key_path", str(config.signing_key_path)),
            ("catalogue_version", catalogue.version),
        ):
            s.add(NodeSetting(key=key, value=value))
        audit.record(s, None, "node.init", "node", province_code, unit.path, admin=admin_username, key_id=signer.keyid)
        write_private_key(config.signing_key_path, signer.to_pem())  # last: a failure above rolls back cleanly
    click.echo(f"initialised provincial node {province_code} ({name})")
    click.echo(f"  database      {redact_url(config.database.url)}")
    click.echo(f"  signing key   {config.signing_key_path} (0600), key id {signer.keyid}")
    click.echo(f"  administrator {admin_username} — must change the password at first login")


def _session_and_actor(ctx: click.Context, username: str):
    """Open the node's database and act as ``username`` (whoever runs the CLI has database access; the
    account still decides scope, and the audit trail names it)."""
    from sqlalchemy import select

    from common.db import make_session_factory
    from common.errors import AuthError
    from provincial_node.models import Account
    from provincial_node.services.access import Actor

    config = provincial_config_from_env(ctx.obj["env"])
    if not config.province_code:
        raise click.UsageError("TMIS_PROVINCE_CODE is required")
    factory = make_session_factory(open_engine(ctx, config.database))
    session = factory()
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or account.disabled:
        session.close()
        raise AuthError(f"no active account {username!r}", details={"username": username})
    return config, session, Actor.of(session, account)


@province.command("template")
@click.option("--group", "group_code", required=True, help="record group code, e.g. JBXX, GNPX")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
def template_cmd(ctx: click.Context, group_code: str, fmt: str, output: str) -> None:
    """Write the import template of a record group (Chinese headers; xlsx includes the code lists)."""
    from common.catalogue import load_catalogue
    from common.db import make_session_factory
    from provincial_node.services import importexport

    config = provincial_config_from_env(ctx.obj["env"])
    with make_session_factory(open_engine(ctx, config.database))() as s:
        data = importexport.template(s, load_catalogue(), group_code, fmt)
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"wrote {output}")


@province.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", "group_code", required=True, help="record group of the file, e.g. JBXX")
@click.option("--school", "school_code", required=True, help="学校标识码 of the school the rows belong to")
@click.option("--as", "username", required=True, help="the account the import is done as (audited)")
@click.option("--report", type=click.Path(dir_okay=False, writable=True), help="write the row errors as CSV")
@click.pass_context
def import_cmd(
    ctx: click.Context, file: str, group_code: str, school_code: str, username: str, report: str | None
) -> None:
    """Import an xlsx/csv file of one record group for a school: bad rows are reported, good rows kept."""
    import csv

    from tqdm import tqdm

    from common.catalogue import load_catalogue
    from provincial_node.services import importexport, units

    fmt = "csv" if file.lower().endswith(".csv") else "xlsx"
    config, session, actor = _session_and_actor(ctx, username)
    with open(file, "rb") as f:
        data = f.read()
    try:
        school = units.get_unit_by_code(session, school_code)
        with tqdm(total=0, unit="row", desc=f"import {group_code}", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = importexport.import_file(
                session, actor, load_catalogue(), config.province_code, school.id, group_code, data, fmt, progress
            )
        session.commit()
    finally:
        session.close()
    click.echo(
        f"{result['rows']} rows: {result['created']} created, {result['updated']} updated, "
        f"{result['unchanged']} unchanged, {result['failed']} failed"
    )
    for e in result["errors"][:20]:
        click.echo(
            f"  row {e['row']} column {e['column']}: {e['reason_zh']} / {e['reason_en']} (value {e['value']!r})",
            err=True,
        )
    if report and result["errors"]:
        with open(report, "w", newline="", encoding="utf-8-sig") as f:
            w = csv.DictWriter(f, fieldnames=["row", "column", "value", "reason_zh", "reason_en"])
            w.writeheader()
            w.writerows(result["errors"])
        click.echo(f"all {len(result['errors'])} errors written to {report}")
    if result["failed"]:
        ctx.exit(1)


@province.command("export")
@click.option("--unit", "unit_code", required=True, help="unit whose subtree is exported")
@click.option("--as", "username", required=True, help="the account the export is done as (audited)")
@click.option("--reason", required=True, help="why the data is exported (数据导出有据可查)")
@click.option("--group", "groups", multiple=True, help="only these record groups (default: all)")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
def export_cmd(
    ctx: click.Context, unit_code: str, username: str, reason: str, groups: tuple[str, ...], fmt: str, output: str
) -> None:
    """Export the effective files of a unit's subtree (recorded in the audit trail)."""
    from common.catalogue import load_catalogue
    from provincial_node.services import importexport, units

    _config, session, actor = _session_and_actor(ctx, username)
    try:
        unit = units.get_unit_by_code(session, unit_code)
        data = importexport.export_unit(session, actor, load_catalogue(), unit.id, reason, fmt, groups or None)
        session.commit()
    finally:
        session.close()
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"wrote {output}")


def _sync_client(ctx: click.Context):
    from common.catalogue import load_catalogue
    from common.db import make_session_factory
    from common.keyfile import read_private_key
    from common.transport import RequestsTransport
    from provincial_node.sync import SyncClient, SyncSettings
    from sync_protocol.keys import Signer

    config = provincial_config_from_env(ctx.obj["env"])
    if not config.province_code or not config.national_url:
        raise click.UsageError("TMIS_PROVINCE_CODE and TMIS_NATIONAL_URL are required for sync")
    factory = make_session_factory(open_engine(ctx, config.database))
    signer = Signer.from_pem(read_private_key(config.signing_key_path))
    return factory, SyncClient(
        factory,
        RequestsTransport(config.national_url),
        signer,
        load_catalogue(),
        SyncSettings(config.province_code, batch_size=config.sync_batch_size, push_window=config.sync_push_window),
    )


@province.group()
def sync() -> None:
    """Sync with the national node (tmis-sync/1): enrol, run a round, inspect rounds."""


@sync.command("enrol")
@click.option("--token", required=True, help="one-time enrolment token from the ministry operator")
@click.pass_context
def sync_enrol(ctx: click.Context, token: str) -> None:
    """Enrol this node's signing key at the national node and store the trust metadata."""
    _factory, client = _sync_client(ctx)
    trust = client.enrol(token)
    click.echo(
        f"enrolled; trust version {trust.version}; root key ids (compare with the ministry's published "
        f"ones): {', '.join(k[:16] for k in sorted(trust.root.keys))}"
    )


@sync.command("run")
@click.pass_context
def sync_run(ctx: click.Context) -> None:
    """Run one sync round now: build batches, push them, verify receipts, pull the inbox."""
    from tqdm import tqdm

    _factory, client = _sync_client(ctx)
    tune_gc_for_batches()
    with tqdm(total=0, unit="batch", desc="push", disable=None) as bar:

        def progress(phase: str, done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        rnd = client.run_round("cli", progress)
    click.echo(
        f"round {rnd.id}: {rnd.status}; {rnd.batches} batches, {rnd.records} records, {rnd.bytes_sent} bytes, "
        f"{rnd.messages} messages; timings {rnd.timings}"
    )
    for e in rnd.errors:
        click.echo(f"  error in {e['phase']}: [{e['code']}] {e['message']}", err=True)
    if rnd.status != "ok":  # failed, or partial (pushed but the inbox pull failed): scripts should notice
        ctx.exit(1)


@sync.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sync_status(ctx: click.Context, as_json: bool) -> None:
    """Outbox backlog, transfer messages waiting to be sent, inbox messages that could not be applied,
    unsent batches, last accepted batch, parked records, trust version."""
    import json

    from common.db import make_session_factory
    from provincial_node import sync as sync_mod

    config = provincial_config_from_env(ctx.obj["env"])
    with make_session_factory(open_engine(ctx, config.database))() as s:
        st = sync_mod.status(s)
    click.echo(json.dumps(st, indent=2) if as_json else "  ".join(f"{k}={v}" for k, v in st.items()))


@sync.command("rounds")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def sync_rounds(ctx: click.Context, limit: int) -> None:
    """The last sync rounds: start, end, status, batches, records, bytes, timings, errors."""
    from common.db import make_session_factory
    from provincial_node import sync as sync_mod

    config = provincial_config_from_env(ctx.obj["env"])
    with make_session_factory(open_engine(ctx, config.database))() as s:
        for r in sync_mod.last_rounds(s, limit):
            click.echo(
                f"{r.id:>5} {r.started_at:%Y-%m-%d %H:%M:%S} {r.status:<8} {r.trigger:<8} batches={r.batches} "
                f"records={r.records} bytes={r.bytes_sent} messages={r.messages} timings={r.timings}"
                + (f" errors={len(r.errors)}" if r.errors else "")
            )


@sync.command("parked")
@click.option("--resolve", "resolve_id", type=int, help="mark a parked record resolved (after fixing its cause)")
@click.pass_context
def sync_parked(ctx: click.Context, resolve_id: int | None) -> None:
    """Records the national node refused (parked; they never block later batches)."""
    from sqlalchemy import select

    from common.db import make_session_factory, utcnow
    from provincial_node.models import ParkedRecord

    config = provincial_config_from_env(ctx.obj["env"])
    factory = make_session_factory(open_engine(ctx, config.database))
    with factory.begin() as s:
        if resolve_id is not None:
            row = s.get(ParkedRecord, resolve_id)
            if row is None:
                raise click.UsageError(f"no parked record {resolve_id}")
            row.resolved_at = utcnow()
        rows = list(s.scalars(select(ParkedRecord).where(ParkedRecord.resolved_at.is_(None)).order_by(ParkedRecord.id)))
        for r in rows:
            click.echo(
                f"{r.id:>5} batch {r.batch_seq} version {r.version} teacher {r.teacher_number}: {r.reason} {r.details}"
            )
    click.echo(f"{len(rows)} parked record(s) open")
