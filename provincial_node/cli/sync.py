"""``tmis province sync …``: enrol at the national node, run a round, inspect rounds, backlog and parked
records."""

from __future__ import annotations

import json

import click
from tqdm import tqdm

from common.cli import tune_gc_for_batches
from common.db import session_scope, utcnow
from provincial_node.cli import _runtime
from provincial_node.jobs import make_sync_client
from provincial_node.sync import status as sync_status
from provincial_node.sync.models import RoundStatus, RoundTrigger
from provincial_node.sync.round import SyncClient


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
    click.echo(
        f"round {rnd.id}: {rnd.status}; {rnd.batches} batches, {rnd.records} records, {rnd.bytes_sent} bytes, "
        f"{rnd.messages} messages; timings {rnd.timings}"
    )
    for e in rnd.errors:
        click.echo(f"  error in {e['phase']}: [{e['code']}] {e['message']}", err=True)
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
            click.echo(
                f"{r.id:>5} batch {r.batch_seq} version {r.version} teacher {r.teacher_number}: {r.reason} {r.details}"
            )
    click.echo(f"{len(rows)} parked record(s) open")


COMMANDS = (sync,)
