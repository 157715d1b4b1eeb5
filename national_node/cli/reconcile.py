"""``tmis national reconciliations``: the comparisons provinces asked for, and what differed."""

from __future__ import annotations

import json

import click

from national_node.cli import _runtime
from national_node.reconcile import reconcile


@click.command("reconciliations")
@click.option("--province", "code", help="2-digit province code")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconciliations(ctx: click.Context, code: str | None, limit: int, as_json: bool) -> None:
    """The last comparisons of provinces' core-view digests with the store: match, or the teacher numbers that
    differ (each with the province's and the national version)."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        rows = [
            {
                "province": r.province_code,
                "checked_at": r.checked_at.isoformat(),
                "matched": r.matched,
                "province_leaves": r.province_leaves,
                "national_leaves": r.national_leaves,
                "differing": r.differing,
            }
            for r in reconcile.latest(s, code, limit)
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        state = "match" if r["matched"] else f"{len(r['differing'])} differ"
        click.echo(
            f"{r['checked_at']}  province {r['province']}  {state}  "
            f"(province {r['province_leaves']} teachers, national {r['national_leaves']})"
        )
        for d in r["differing"]:
            click.echo(
                f"    {d['teacher_number']}  province version {d['province_version']}, "
                f"national version {d['national_version']}"
            )


COMMANDS = (reconciliations,)
