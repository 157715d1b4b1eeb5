"""``tmis province sync …``: enrol at the national node, run a round, inspect rounds, backlog and parked
records."""

from __future__ import annotations

import json

import click
from sqlalchemy import select
from tqdm import tqdm

from common.cli import tune_gc_for_batches
from common.db import session_scope, utcnow
from provincial_node.cli import _runtime
from provincial_node.jobs import make_sync_client
from provincial_node.sync import recovery
from provincial_node.sync import status as sync_status
from provincial_node.sync.keys import SHORT_ID, KeyRing, create_key, unenrolled_newest
from provincial_node.sync.models import RoundStatus, RoundTrigger, TrustDoc
from provincial_node.sync.round import SyncClient
from provincial_node.sync.trust import trust_chain
from provincial_node.teacher_files import resync


def _client(ctx: click.Context) -> SyncClient:
    config = _runtime.config(ctx)
    if not config.province_code or not config.national_url:
        raise click.UsageError("TMIS_PROVINCE_CODE and TMIS_NATIONAL_URL are required for sync")
    return make_sync_client(_runtime.runtime(ctx, config))


@click.group()
def sync() -> None:
    """Sync with the national node (tmis-sync/1): enrol, run a round, inspect rounds."""


@sync.command("enrol")
@click.option("--token", required=True, help="one-time enrolment token from the ministry operator")
@click.pass_context
def sync_enrol(ctx: click.Context, token: str) -> None:
    """Enrol this node's signing key at the national node and store the trust metadata."""
    trust = _client(ctx).enrol(token)
    click.echo(
        f"enrolled; trust version {trust.version}; root key ids (compare with the ministry's published "
        f"ones): {', '.join(k[:16] for k in sorted(trust.root.keys))}"
    )


@sync.command("run")
@click.pass_context
def sync_run(ctx: click.Context) -> None:
    """Run one sync round now: build batches, push them, verify receipts, pull the inbox."""
    client = _client(ctx)
    tune_gc_for_batches()
    with tqdm(total=0, unit="batch", desc="push", disable=None) as bar:

        def progress(phase: str, done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        rnd = client.run_round(RoundTrigger.CLI, progress)
    notes = rnd.notes or {}
    if notes.get("resigned"):
        click.echo(f"  re-signed with the current key: batches {notes['resigned']}")
    recovered = notes.get("recovery") or {}
    if recovered.get("adopted"):
        click.echo(f"  adopted the national node's batches {recovered['adopted']} (this database lacked them)")
    reconciled = notes.get("reconcile") or {}
    if reconciled.get("match"):
        click.echo(f"  reconciliation: {reconciled['leaves']} teachers match the national store")
    elif reconciled.get("skipped"):
        click.echo(f"  reconciliation skipped: {reconciled['skipped']}")
    click.echo(
        f"round {rnd.id}: {rnd.status}; {rnd.batches} batches, {rnd.records} records, {rnd.bytes_sent} bytes, "
        f"{rnd.messages} messages; timings {rnd.timings}"
    )
    for e in rnd.errors:
        click.echo(f"  error in {e['phase']}: [{e['code']}] {e['message']}", err=True)
    if recovered.get("lost_edits"):
        _print_recovery(ctx)
    for d in reconciled.get("differing", []):
        click.echo(
            f"  differs: {d['teacher_number']} province version {d['province_version']}, national version "
            f"{d['national_version']}",
            err=True,
        )
    if rnd.status != RoundStatus.OK:  # failed, or partial (pushed but the inbox pull failed): scripts should notice
        ctx.exit(1)


@sync.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sync_status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Outbox backlog, transfer messages waiting to be sent, inbox messages that could not be applied,
    unsent batches, last accepted batch, parked records, trust version."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        st = sync_status.status(s)
    click.echo(json.dumps(st, indent=2) if as_json else "  ".join(f"{k}={v}" for k, v in st.items()))


@sync.command("rounds")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def sync_rounds(ctx: click.Context, limit: int) -> None:
    """The last sync rounds: start, end, status, batches, records, bytes, timings, errors."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        for r in sync_status.last_rounds(s, limit):
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
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        if resolve_id is not None:
            sync_status.resolve_parked(s, resolve_id, utcnow())
        rows = sync_status.open_parked(s)
        for r in rows:
            outcome = sync_status.parked_outcome(s, r)
            click.echo(
                f"{r.id:>5} batch {r.batch_seq} version {r.version} teacher {r.teacher_number}: {r.reason} {r.details}"
                + (f" — {outcome}" if outcome else "")
            )
    click.echo(f"{len(rows)} parked record(s) open; send one again after fixing it: `sync reload --parked ID`")


@sync.command("reload")
@click.option("--teacher", "teachers", multiple=True, help="teacher number (repeatable)")
@click.option("--unit", "unit_code", help="every teacher of this unit and the units below it")
@click.option("--parked", "parked_id", type=int, help="a parked record, sent again after its cause was fixed")
@click.pass_context
def sync_reload(ctx: click.Context, teachers: tuple[str, ...], unit_code: str | None, parked_id: int | None) -> None:
    """Queue teachers' current core records as new versions (the repair of a reconciliation difference, or a
    parked record sent again); the next round sends them."""
    if not teachers and unit_code is None and parked_id is None:
        raise click.UsageError("give --teacher TN, --unit CODE or --parked ID")
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        c = rt.context(s)
        done = [resync.resend_parked(c, parked_id)] if parked_id is not None else []
        if teachers or unit_code:
            done += resync.reload(c, teacher_numbers=teachers, unit_code=unit_code)
    for r in done:
        click.echo(
            f"{r.teacher_number}: " + (f"queued as version {r.version}" if r.version else f"not sent ({r.reason})")
        )
    queued = sum(1 for r in done if r.version)
    click.echo(f"{queued} record(s) queued; `tmis province sync run` sends them")


def _print_recovery(ctx: click.Context) -> None:
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        rows = recovery.open_report(s)
        click.echo(
            f"RECOVERY REPORT: this node was restored from an older backup; {len(rows)} teacher(s) were changed after "
            "the backup and the national node holds the newer version — enter these edits again:",
            err=True,
        )
        for r in rows:
            local = f"this node's last version {r.local_version}" if r.local_version else "not in this node's data"
            click.echo(f"  {r.teacher_number}  national version {r.national_version}, {local}", err=True)


@sync.command("recovery")
@click.option("--resolve", "resolve", multiple=True, help="teacher number whose edit was entered again")
@click.option("--resolve-all", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sync_recovery(ctx: click.Context, resolve: tuple[str, ...], resolve_all: bool, as_json: bool) -> None:
    """The recovery report of a node restored from an older backup: teacher numbers whose national version is
    newer than this node's data (edits made after the backup, to be entered again)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        for r in recovery.open_report(s):
            if resolve_all or r.teacher_number in resolve:
                r.resolved_at = utcnow()
        rows = [
            {
                "teacher_number": r.teacher_number,
                "national_version": r.national_version,
                "local_version": r.local_version,
                "batch_seq": r.batch_seq,
                "detected_at": r.detected_at.isoformat(),
            }
            for r in recovery.open_report(s)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['teacher_number']}  national version {r['national_version']}  "
            f"local version {r['local_version'] or '-'}  (batch {r['batch_seq']}, found {r['detected_at']})"
        )
    click.echo(f"{len(rows)} teacher(s) to enter again")


@click.group()
def keys() -> None:
    """This node's signing keys (签名密钥): list them, rotate to a new one."""


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """The keys of this node's ring, oldest first: short id, whether the newest trust version lists it, which
    one signs (the newest listed), and its file."""
    config = _runtime.config(ctx, require_code=True)
    ring = KeyRing.load(config.signing_key_path)
    rt = _runtime.runtime(ctx, config)
    with rt.session_factory() as s:
        trust = trust_chain(s)[-1] if s.scalar(select(TrustDoc.version).limit(1)) else None
    listed = ring.listed(trust, config.province_code) if trust else []
    current = listed[-1] if listed else None
    for signer, path in zip(ring.signers, ring.paths, strict=True):
        state = "signs" if signer is current else ("listed" if signer in listed else "not listed")
        click.echo(f"{signer.keyid[:SHORT_ID]}  {state:<10}  {path}")
    click.echo(f"trust version {trust.version if trust else '-'}; {len(listed)} of {len(ring.signers)} key(s) listed")


@keys.command("rotate")
@click.option("--token", required=True, help="one-time enrolment token from the ministry operator")
@click.pass_context
def keys_rotate(ctx: click.Context, token: str) -> None:
    """Create a new signing key and enrol it at the national node with a one-time token (routine rotation, and
    the recovery from a revoked or compromised key). The next round signs with it and re-signs every batch
    built but not yet accepted; the old key stays listed until the ministry revokes it."""
    client = _client(ctx)
    config = _runtime.config(ctx)
    with client.factory() as s:
        trust = trust_chain(s)[-1] if s.scalar(select(TrustDoc.version).limit(1)) else None
    if trust is None:
        raise click.UsageError("this node is not enrolled yet: `tmis province sync enrol --token …` first")
    signer = unenrolled_newest(client.ring, trust, config.province_code)  # a rotation that did not get through
    if signer is None:
        signer = create_key(config.signing_key_path, utcnow())
    trust = client.enrol(token, signer)
    old = [s.keyid[:SHORT_ID] for s in client.ring.listed(trust, config.province_code) if s is not signer]
    click.echo(
        f"new key {signer.keyid[:SHORT_ID]} enrolled; trust version {trust.version}; it signs from the next round"
    )
    if old:
        click.echo(
            f"the old key(s) {', '.join(old)} stay listed until the ministry revokes them: "
            f"`tmis national keys revoke --key-id {old[0]} --reason …`"
        )


COMMANDS = (sync, keys)
