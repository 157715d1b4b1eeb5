"""``tmis national transfers list | show | expire``: cross-province transfers the national node brokers."""

from __future__ import annotations

import json

import click

from common.db import session_scope
from national_node.cli import _runtime
from national_node.transfers import broker


@click.group()
def transfers() -> None:
    """Cross-province transfers the national node brokers: what is in flight, expiry."""


@transfers.command("list")
@click.option("--all", "include_closed", is_flag=True, help="include completed, rejected, withdrawn, expired")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def transfers_list(ctx: click.Context, include_closed: bool, as_json: bool) -> None:
    """Transfers in flight with their current step, who they wait for and their age."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        rows = [broker.to_json(t) for t in broker.in_flight(s, include_closed)]
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
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        row = broker.get(s, transfer_id)
        if row is None:
            raise click.BadParameter(f"no transfer {transfer_id}", param_hint="TRANSFER_ID")
        out = broker.to_json(row)
        out["messages"] = [
            {"leaf_index": m.leaf_index, "province": m.province_code, "kind": m.kind, "message_hash": m.message_hash}
            for m in broker.messages(s, transfer_id)
        ]
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


@transfers.command("expire")
@click.pass_context
def transfers_expire(ctx: click.Context) -> None:
    """Close open requests past their deadline now and tell both provinces (serve does this hourly)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        ids = broker.expire_due(s, rt.keys())
    click.echo(f"{len(ids)} transfer(s) expired" + (": " + ", ".join(ids) if ids else ""))


COMMANDS = (transfers,)
