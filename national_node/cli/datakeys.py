"""``tmis national data-keys …``: the seal key file (national seal private keys and the identity index key,
``<data dir>/keys/seal-keys.json``, 0600) and the keyed identity indexes (national_node.sealing)."""

from __future__ import annotations

import click

from common.db import session_scope
from national_node import sealing
from national_node.cli import _runtime
from national_node.intake import identity


@click.group("data-keys")
def data_keys() -> None:
    """The seal keys provinces seal ID numbers to, and the identity index key (<data dir>/keys/seal-keys.json)."""


@data_keys.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the seal key file of a node that has none (``tmis national init`` creates it for new nodes; an
    upgraded node runs this, then ``data-keys reindex``). Provinces register their seal keys at their next round."""
    rt = _runtime.runtime(ctx)
    keys = sealing.create_key_file(rt.keys_dir)
    click.echo(f"created seal key file {sealing.key_path(rt.keys_dir)} (0600), seal key {keys.current}")
    click.echo("keep a copy with the database backups, apart from them: without it no sealed identity opens")


@data_keys.command("reindex")
@click.option("--all", "all_rows", is_flag=True, help="every record, not only those without a keyed index")
@click.pass_context
def keys_reindex(ctx: click.Context, all_rows: bool) -> None:
    """Compute the keyed identity index of every core record without one (after the upgrade to sealed identities;
    ``serve`` does it too when it starts); ``--all`` after a rotation of the index key."""
    rt = _runtime.runtime(ctx)
    keys = sealing.seal_keys_of(rt.keys())
    with session_scope(rt.session_factory) as s:
        n = identity.reindex(s, keys, all_rows=all_rows, progress=lambda n: click.echo(f"  {n}", err=True))
    with rt.session_factory() as s:
        left = identity.unindexed(s)
    click.echo(f"indexed {n} core records; {left} without a keyed index")
    if left:
        ctx.exit(1)


@data_keys.command("rotate")
@click.option("--index", "index", is_flag=True, help="a new identity index key (every index is computed again)")
@click.pass_context
def keys_rotate(ctx: click.Context, index: bool) -> None:
    """Add a new current seal key (the old ones stay in the file: registrations wrapped to them still open; every
    province registers a seal key wrapped to the new one at its next round), or with ``--index`` replace the
    identity index key and compute every index again."""
    rt = _runtime.runtime(ctx)
    path = sealing.key_path(rt.keys_dir)
    new = sealing.load_seal_keys(rt.keys_dir).rotated(index=index)
    new.save(path, replace=True)
    if not index:
        click.echo(f"new current seal key {new.current}; provinces re-register at their next round")
        return
    with session_scope(rt.session_factory) as s:
        n = identity.reindex(s, new, all_rows=True)
    click.echo(f"new identity index key {new.index_id}; {n} core records indexed again")


@data_keys.command("status")
@click.pass_context
def keys_status(ctx: click.Context) -> None:
    """The seal keys, the index key id, each province's registered seal keys, records without a keyed index."""
    rt = _runtime.runtime(ctx)
    keys = sealing.load_seal_keys(rt.keys_dir)
    click.echo(
        f"seal key file {sealing.key_path(rt.keys_dir)}: seal keys {', '.join(sorted(keys.seal_keys))}, "
        f"current {keys.current}, index key {keys.index_id}"
    )
    with rt.session_factory() as s:
        for r in sealing.registrations(s):
            click.echo(
                f"  province {r.province_code}: seal key {r.kid} (wrapped to {r.recipient}, {r.registered_at:%Y-%m-%d})"
            )
        click.echo(f"core records without a keyed index: {identity.unindexed(s)}")


COMMANDS = (data_keys,)
