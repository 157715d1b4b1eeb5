"""``tmis province keys …`` (the node data key) and ``tmis province audit verify`` (the audit chain)."""

from __future__ import annotations

import click

from common.db import session_scope
from common.protection import DataKeys
from provincial_node import datakeys
from provincial_node.audit_trail import trail
from provincial_node.cli import _runtime


@click.group("data-keys")
def keys() -> None:
    """The node data key that protects ID numbers at rest (TMIS_DATA_KEY_PATH, default <data dir>/data.key)."""


@keys.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the data key file (mode 0600) of a node that has none (``tmis province init`` creates it for new
    nodes; an upgraded node runs this, then ``keys reencrypt``)."""
    cfg = _runtime.config(ctx)
    path = cfg.data_key_file
    datakeys.create_key_file(path)
    click.echo(f"created data key {path} (0600); keep a copy with the database backups, apart from them")


@keys.command("reencrypt")
@click.pass_context
def keys_reencrypt(ctx: click.Context) -> None:
    """Encrypt every stored ID number under the current key and fill the blind indexes (the migration path of a
    node upgraded from before protection; safe to run again)."""
    rt = _runtime.runtime(ctx)
    result = datakeys.reencrypt(rt.session_factory, progress=lambda table, n: click.echo(f"  {table}: {n}", err=True))
    for table, n in result.rows.items():
        click.echo(f"{table}: {n} rows")
    with rt.session_factory() as s:
        left = datakeys.unprotected_rows(s)
    click.echo("every ID number is encrypted" if left == 0 else f"{left} rows still unprotected")
    if left:
        ctx.exit(1)


@keys.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Add a new current data key (the old ones stay in the file) and re-encrypt everything under it."""
    cfg = _runtime.config(ctx)
    new = datakeys.rotate_key_file(cfg.data_key_file)
    click.echo(f"new current data key {new.current}; re-encrypting")
    rt = _runtime.runtime(ctx, cfg)
    result = datakeys.reencrypt(rt.session_factory)
    with rt.session_factory() as s:
        old = datakeys.rows_under_old_keys(s, new)
    click.echo(f"re-encrypted {sum(result.rows.values())} rows; {old} teacher rows under older keys")
    if old:
        ctx.exit(1)


@keys.command("status")
@click.pass_context
def keys_status(ctx: click.Context) -> None:
    """The key file's keys and how many rows are not yet protected under the current key."""
    cfg = _runtime.config(ctx)
    k = DataKeys.load(cfg.data_key_file)
    rt = _runtime.runtime(ctx, cfg)
    with rt.session_factory() as s:
        click.echo(f"data key file {cfg.data_key_file}: keys {', '.join(sorted(k.keys))}, current {k.current}")
        click.echo(f"unprotected rows: {datakeys.unprotected_rows(s)}")
        click.echo(f"teacher rows under older keys: {datakeys.rows_under_old_keys(s, k)}")


@click.group("audit")
def audit() -> None:
    """The audit trail (操作日志)."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the audit trail's hash chain: every event's hash, the links, no gap, and the stored head. Exit 1
    naming every break. Keep the printed head outside the database: a rewrite of the whole chain shows there."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        verdict = trail.verify_chain(s)
    for b in verdict.breaks:
        click.echo(f"FAIL seq {b.seq}: {b.kind} — {b.detail}")
    click.echo(f"{verdict.events} events; head seq {verdict.head_seq} hash {verdict.head_hash}")
    if verdict.ok:
        click.echo("OK audit chain intact")
    else:
        ctx.exit(1)


COMMANDS = (keys, audit)
