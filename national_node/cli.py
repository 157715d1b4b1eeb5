"""``tmis national …``: commands of the national node (国家级节点)."""

from __future__ import annotations

import click

from common.cli import configure_logging, db_group, serve_wsgi
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
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8000); expire overdue transfer
    requests hourly."""
    from national_node.app import create_app
    from national_node.jobs import start_scheduler

    config = national_config_from_env(ctx.obj["env"])
    configure_logging(config.log_level)
    app = create_app(config)
    start_scheduler(app)
    serve_wsgi(app, config.bind_host, config.bind_port, threads)


def _factory(ctx: click.Context):
    from common.cli import open_engine
    from common.db import make_session_factory

    config = national_config_from_env(ctx.obj["env"])
    return config, make_session_factory(open_engine(ctx, config.database))


@national.command("init")
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the national node: database, root keys (3, threshold 2), log key and message key (files
    0600 under <data dir>/keys), trust version 1, and the acceptance log's first leaf."""
    from common import migrations
    from common.db import redact_url, session_scope
    from common.errors import ConfigError
    from national_node.models import NodeSetting
    from national_node.services import ledger

    config, factory = _factory(ctx)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(factory.kw["bind"], MIGRATIONS_DIR)
    with factory() as s:
        if s.get(NodeSetting, "log_origin") is not None:
            raise ConfigError(
                "this database already holds an initialised national node",
                details={
                    "variable": "TMIS_DATABASE_URL",
                    "value": redact_url(config.database.url),
                    "reason": "initialised",
                },
            )
    keys_dir = config.data_dir / "keys"
    if any(p.exists() for p in ledger.key_files(keys_dir).values()):
        raise ConfigError(
            f"key files already exist in {keys_dir}; refusing to overwrite them",
            details={"variable": "TMIS_DATA_DIR", "value": str(keys_dir), "reason": "exists"},
        )
    keys = ledger.generate_keys(keys_dir)
    with session_scope(factory) as s:
        s.add(NodeSetting(key="log_origin", value=config.log_origin))
        s.add(NodeSetting(key="log_head", value="0"))
        s.flush()
        trust = ledger.publish_trust(s, keys, config.log_origin, "national node initialised")
    click.echo(f"initialised national node, log origin {config.log_origin}")
    click.echo(f"  database   {redact_url(config.database.url)}")
    click.echo(f"  keys       {keys_dir} (0600): root-1..3 (threshold 2), log, messages")
    click.echo(f"  trust      version {trust.version}, root key ids " + ", ".join(k[:16] for k in trust.root.keys))


@national.command("enrol-token")
@click.option("--province", "code", required=True, help="2-digit province code")
@click.pass_context
def enrol_token(ctx: click.Context, code: str) -> None:
    """Issue a one-time enrolment token for a province (valid 7 days); hand it over out of band."""
    from common.db import session_scope
    from national_node.services import registry

    _config, factory = _factory(ctx)
    with session_scope(factory) as s:
        token = registry.issue_token(s, code)
    click.echo(token)


@national.command("provinces")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def provinces(ctx: click.Context, as_json: bool) -> None:
    """Per province: enrolled, last sequence, last seen, lag, records, refused records, evidence."""
    import json

    from sqlalchemy import func, select

    from common.db import utcnow
    from national_node.models import Batch, Evidence, Province, RefusedRecord, TeacherCore

    _config, factory = _factory(ctx)
    now = utcnow()
    with factory() as s:
        counts = {
            k: v
            for k, v in s.execute(
                select(TeacherCore.province_code, func.count()).group_by(TeacherCore.province_code)
            ).all()
        }
        refused = {
            k: v
            for k, v in s.execute(
                select(RefusedRecord.province_code, func.count()).group_by(RefusedRecord.province_code)
            ).all()
        }
        batches = {
            k: v for k, v in s.execute(select(Batch.province_code, func.count()).group_by(Batch.province_code)).all()
        }
        evidence = {
            k: v
            for k, v in s.execute(select(Evidence.province_code, func.count()).group_by(Evidence.province_code)).all()
        }
        rows = [
            {
                "code": p.code,
                "name": p.name,
                "enrolled": p.enrolled_at is not None,
                "last_seq": p.last_seq,
                "last_version": p.last_version,
                "last_seen": p.last_seen.isoformat() if p.last_seen else None,
                "lag_seconds": int((now - p.last_seen).total_seconds()) if p.last_seen else None,
                "teachers": counts.get(p.code, 0),
                "batches": batches.get(p.code, 0),
                "refused": refused.get(p.code, 0),
                "equivocations": evidence.get(p.code, 0),
                "inbox": [p.inbox_acked, p.inbox_seq],
            }
            for p in s.scalars(select(Province).order_by(Province.code))
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'code':<5}{'name':<12}{'seq':>6}{'version':>9}{'teachers':>10}{'refused':>9}{'equiv':>7}  last seen")
    for r in rows:
        if r["enrolled"]:
            click.echo(
                f"{r['code']:<5}{r['name']:<12}{r['last_seq']:>6}{r['last_version']:>9}{r['teachers']:>10}"
                f"{r['refused']:>9}{r['equivocations']:>7}  {r['last_seen'] or '-'}"
            )
    click.echo(f"{sum(1 for r in rows if r['enrolled'])} of {len(rows)} provinces enrolled")
    from national_node.services import ledger

    with factory() as s:
        current = ledger.current_trust(s)
    left = current.expires - now
    click.echo(
        f"trust version {current.version} expires {current.expires:%Y-%m-%d}"
        + (" — RENEW NOW: `tmis national trust renew`" if left.days < 30 else "")
    )


@national.command("export")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="bundle directory to create")
@click.pass_context
def export(ctx: click.Context, output: str) -> None:
    """Export the audit bundle (trust, batches, receipts, transfer messages, inbox messages, log leaves,
    checkpoint) for `tmis audit bundle` and `tmis audit transfer`."""
    from pathlib import Path

    from sqlalchemy import select

    from national_node.models import Batch, InboxMessage, LogLeaf, TransferMessage, TrustVersion
    from national_node.services import ledger

    config, factory = _factory(ctx)
    root = Path(output)
    if root.exists() and any(root.iterdir()):
        raise click.UsageError(f"{root} exists and is not empty")
    keys = ledger.load_keys(config.data_dir / "keys")
    with factory() as s:
        for sub in ("trust", "batches", "receipts", "messages", "inbox", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for t in s.scalars(select(TrustVersion).order_by(TrustVersion.version)):
            (root / "trust" / f"{t.version}.trust.json").write_bytes(t.envelope)
        n = 0
        for b in s.scalars(select(Batch).order_by(Batch.province_code, Batch.seq)):
            (root / "batches" / b.province_code).mkdir(exist_ok=True)
            (root / "receipts" / b.province_code).mkdir(exist_ok=True)
            (root / "batches" / b.province_code / f"{b.seq:08d}.batch").write_bytes(b.data)
            (root / "receipts" / b.province_code / f"{b.seq:08d}.receipt.json").write_bytes(b.receipt)
            n += 1
        m = 0
        for msg in s.scalars(select(TransferMessage).order_by(TransferMessage.leaf_index)):
            (root / "messages" / msg.province_code).mkdir(exist_ok=True)
            (root / "messages" / msg.province_code / f"{msg.leaf_index:08d}.msg").write_bytes(msg.envelope)
            m += 1
        for im in s.scalars(select(InboxMessage).order_by(InboxMessage.province_code, InboxMessage.seq)):
            (root / "inbox" / im.province_code).mkdir(exist_ok=True)
            (root / "inbox" / im.province_code / f"{im.seq:08d}.msg").write_bytes(im.envelope)
        leaves = list(s.scalars(select(LogLeaf.leaf).order_by(LogLeaf.index)))
        (root / "log" / "leaves.jsonl").write_bytes(b"".join(x + b"\n" for x in leaves))
        (root / "log" / "checkpoint").write_text(
            ledger.checkpoint(s, keys, config.log_origin, len(leaves)), encoding="utf-8"
        )
    click.echo(
        f"exported {n} batches, {m} transfer messages, {len(leaves)} log leaves to {root}; "
        f"verify with: tmis audit bundle {root}"
    )


@national.group()
def transfers() -> None:
    """Cross-province transfers the national node brokers: what is in flight, expiry."""


@transfers.command("list")
@click.option("--all", "include_closed", is_flag=True, help="include completed, rejected, withdrawn, expired")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def transfers_list(ctx: click.Context, include_closed: bool, as_json: bool) -> None:
    """Transfers in flight with their current step, who they wait for and their age."""
    import json

    from national_node.services import transfers as svc

    _config, factory = _factory(ctx)
    with factory() as s:
        rows = [svc.to_json(t) for t in svc.in_flight(s, include_closed)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no cross-province transfers" + ("" if include_closed else " in flight"))
        return
    click.echo(
        f"{'transfer':<20} {'kind':<18} {'teacher':<14} {'from':<4} {'to':<4} {'state':<14} "
        f"{'next step':<17} {'waits':<5} {'age h':>7}  expires"
    )
    for r in rows:
        click.echo(
            f"{r['transfer_id']:<20} {r['kind']:<18} {r['teacher_number']:<14} {r['from_province']:<4} "
            f"{r['to_province']:<4} {r['state']:<14} {r['next_step'] or '-':<17} {r['waiting_for'] or '-':<5} "
            f"{r['age_hours']:>7}  {r['expires_at']}"
        )


@transfers.command("show")
@click.argument("transfer_id")
@click.pass_context
def transfers_show(ctx: click.Context, transfer_id: str) -> None:
    """One transfer: its steps and the log leaves of its signed messages."""
    import json

    from national_node.models import Transfer
    from national_node.services import transfers as svc

    _config, factory = _factory(ctx)
    with factory() as s:
        row = s.get(Transfer, transfer_id)
        if row is None:
            raise click.BadParameter(f"no transfer {transfer_id}", param_hint="TRANSFER_ID")
        out = svc.to_json(row)
        out["messages"] = [
            {"leaf_index": m.leaf_index, "province": m.province_code, "kind": m.kind, "message_hash": m.message_hash}
            for m in svc.messages(s, transfer_id)
        ]
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


@transfers.command("expire")
@click.pass_context
def transfers_expire(ctx: click.Context) -> None:
    """Close open requests past their deadline now and tell both provinces (serve does this hourly)."""
    from common.db import session_scope
    from national_node.services import ledger
    from national_node.services import transfers as svc

    config, factory = _factory(ctx)
    with session_scope(factory) as s:
        ids = svc.expire_due(s, ledger.load_keys(config.data_dir / "keys"))
    click.echo(f"{len(ids)} transfer(s) expired" + (": " + ", ".join(ids) if ids else ""))


@national.group()
def keys() -> None:
    """Province keys: rotation and revocation, each published as a new trust version."""


@keys.command("add")
@click.option("--province", "code", required=True)
@click.option("--public-key", required=True, help="base64 of the new raw Ed25519 public key")
@click.pass_context
def keys_add(ctx: click.Context, code: str, public_key: str) -> None:
    """Rotation step 1: list a new key beside the old one (revoke the old one once the province switched)."""
    from common.db import session_scope
    from national_node.services import ledger, registry

    config, factory = _factory(ctx)
    with session_scope(factory) as s:
        trust = registry.add_key(s, ledger.load_keys(config.data_dir / "keys"), config.log_origin, code, public_key)
    click.echo(f"trust version {trust.version} published")


@keys.command("revoke")
@click.option("--key-id", required=True)
@click.option("--reason", required=True)
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, reason: str) -> None:
    """Revoke a province key (a new trust version without it)."""
    from common.db import session_scope
    from national_node.services import ledger, registry

    config, factory = _factory(ctx)
    with session_scope(factory) as s:
        trust = registry.revoke_key(s, ledger.load_keys(config.data_dir / "keys"), config.log_origin, key_id, reason)
    click.echo(f"trust version {trust.version} published")


@national.command("duplicates")
@click.pass_context
def duplicates(ctx: click.Context) -> None:
    """Cross-province duplicate identities (the same document under two teacher numbers)."""
    from national_node.services import intake

    _config, factory = _factory(ctx)
    with factory() as s:
        rows = intake.list_duplicates(s)
        for d in rows:
            click.echo(
                f"{d.detected_at:%Y-%m-%d %H:%M} {d.teacher_number_a} ({d.province_a}) = "
                f"{d.teacher_number_b} ({d.province_b}){'  resolved' if d.resolved_at else ''}"
            )
    click.echo(f"{len(rows)} duplicate identit{'y' if len(rows) == 1 else 'ies'}")


@national.command("teacher")
@click.argument("teacher_number")
@click.option("--version", "version", type=click.IntRange(min=0), help="print this version's record as signed")
@click.pass_context
def teacher(ctx: click.Context, teacher_number: str, version: int | None) -> None:
    """A teacher number's current core record and every applied version (read back from the stored batches)."""
    from sqlalchemy import select

    from national_node.models import Batch, TeacherCore, TeacherCoreHistory
    from national_node.services import intake
    from sync_protocol.errors import MalformedError
    from sync_protocol.identifiers import check_teacher_number

    try:
        check_teacher_number(teacher_number)
    except MalformedError as e:
        raise click.BadParameter(str(e), param_hint="TEACHER_NUMBER") from None
    _config, factory = _factory(ctx)
    with factory() as s:
        if version is not None:
            line = intake.record_at(s, teacher_number, version)
            if line is None:
                raise click.ClickException(f"no batch applied version {version} of {teacher_number}")
            click.echo(line.decode())
            return
        core = s.get(TeacherCore, teacher_number)
        if core is None:
            raise click.ClickException(f"the national store holds no teacher {teacher_number}")
        click.echo(
            f"{teacher_number}  province {core.province_code}  version {core.version}  {core.op}  "
            f"updated {core.updated_at:%Y-%m-%d %H:%M:%S}Z"
        )
        seqs = dict(
            s.execute(
                select(Batch.batch_hash, Batch.seq)
                .join(TeacherCoreHistory, TeacherCoreHistory.batch_hash == Batch.batch_hash)
                .where(TeacherCoreHistory.teacher_number == teacher_number)
            ).all()
        )
        for h in s.scalars(
            select(TeacherCoreHistory)
            .where(TeacherCoreHistory.teacher_number == teacher_number)
            .order_by(TeacherCoreHistory.applied_at, TeacherCoreHistory.id)
        ):
            source = (
                f"batch {h.province_code}#{seqs[h.batch_hash]}"
                if h.batch_hash in seqs
                else f"transfer message {h.batch_hash[:12]}…"
            )
            click.echo(
                f"  version {h.version:>8}  {h.province_code}  {h.op:<14} {source:<28} "
                f"{h.applied_at:%Y-%m-%d %H:%M:%S}Z"
            )


@national.command("checkpoint")
@click.pass_context
def checkpoint_cmd(ctx: click.Context) -> None:
    """Print the newest signed checkpoint of the acceptance log."""
    from national_node.services import ledger

    config, factory = _factory(ctx)
    with factory() as s:
        click.echo(ledger.checkpoint(s, ledger.load_keys(config.data_dir / "keys"), config.log_origin), nl=False)


@national.command("evidence")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="also write each offered batch file here")
@click.pass_context
def evidence(ctx: click.Context, output: str | None) -> None:
    """Equivocation evidence: provinces that signed two different batches for one sequence number."""
    from pathlib import Path

    from sqlalchemy import select

    from national_node.models import Evidence

    _config, factory = _factory(ctx)
    with factory() as s:
        rows = list(s.scalars(select(Evidence).order_by(Evidence.id)))
        for e in rows:
            click.echo(
                f"{e.received_at:%Y-%m-%d %H:%M:%S} province {e.province_code} seq {e.seq}: accepted "
                f"{e.accepted_batch_hash[:16]}…, offered {e.offered_batch_hash[:16]}…"
            )
            if output:
                Path(output).mkdir(parents=True, exist_ok=True)
                (Path(output) / f"{e.province_code}-{e.seq:08d}-{e.offered_batch_hash}.batch").write_bytes(
                    e.offered_data
                )
    click.echo(f"{len(rows)} equivocation(s)")


@national.group()
def trust() -> None:
    """Trust metadata (root-signed key lists): show and renew."""


@trust.command("show")
@click.pass_context
def trust_show(ctx: click.Context) -> None:
    """The trust version in force, its expiry and the keys it lists."""
    from national_node.services import ledger

    _config, factory = _factory(ctx)
    with factory() as s:
        t = ledger.current_trust(s)
    click.echo(f"trust version {t.version}, issued {t.issued_at:%Y-%m-%d}, expires {t.expires:%Y-%m-%d}")
    click.echo(f"  root keys ({t.root.threshold} of {len(t.root.keys)}): {', '.join(k[:16] for k in t.root.keys)}")
    for code, ks in sorted(t.provinces.items()):
        click.echo(f"  province {code}: {', '.join(k[:16] for k in ks.keys)}")


@trust.command("renew")
@click.option("--reason", default="renewal before expiry", show_default=True)
@click.pass_context
def trust_renew(ctx: click.Context, reason: str) -> None:
    """Publish the same keys as a new trust version with a new expiry (do this well before it expires;
    batches are refused under expired trust). The new version is logged and routed to every province."""
    from common.db import session_scope
    from national_node.services import ledger, registry

    config, factory = _factory(ctx)
    with session_scope(factory) as s:
        t = registry.renew(s, ledger.load_keys(config.data_dir / "keys"), config.log_origin, reason)
    click.echo(f"trust version {t.version} published, expires {t.expires:%Y-%m-%d}")
