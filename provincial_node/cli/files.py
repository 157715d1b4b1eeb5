"""``tmis province template | import | export``: Excel/CSV templates, batch import, audited export."""

from __future__ import annotations

import csv

import click
from tqdm import tqdm

from common.db import session_scope
from provincial_node.accounts import accounts, units
from provincial_node.cli import _runtime
from provincial_node.teacher_files import importexport


@click.command("template")
@click.option("--group", "group_code", required=True, help="record group code, e.g. JBXX, GNPX")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
def template_cmd(ctx: click.Context, group_code: str, fmt: str, output: str) -> None:
    """Write the import template of a record group (Chinese headers; xlsx includes the code lists)."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        data = importexport.template(rt.context(s), group_code, fmt)
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"wrote {output}")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", "group_code", required=True, help="record group of the file, e.g. JBXX")
@click.option("--school", "school_code", required=True, help="学校标识码 of the school the rows belong to")
@_runtime.credential_options
@click.option("--report", type=click.Path(dir_okay=False, writable=True), help="write the row errors as CSV")
@click.pass_context
def import_cmd(
    ctx: click.Context,
    file: str,
    group_code: str,
    school_code: str,
    username: str,
    token: str | None,
    report: str | None,
) -> None:
    """Import an xlsx/csv file of one record group for a school: bad rows are reported, good rows kept."""
    fmt = "csv" if file.lower().endswith(".csv") else "xlsx"
    rt = _runtime.runtime(ctx, _runtime.config(ctx, require_code=True))
    with open(file, "rb") as f:
        data = f.read()
    with session_scope(rt.session_factory) as s:
        pctx = _runtime.acting_as(rt, s, username, token)
        school = units.get_unit_by_code(s, school_code)
        with tqdm(total=0, unit="row", desc=f"import {group_code}", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = importexport.import_file(pctx, school.id, group_code, data, fmt, progress)
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
            w = csv.DictWriter(
                f, fieldnames=["row", "column", "value", "reason_zh", "reason_en"], extrasaction="ignore"
            )
            w.writeheader()
            w.writerows(result["errors"])
        click.echo(f"all {len(result['errors'])} errors written to {report}")
    if result["failed"]:
        ctx.exit(1)


@click.command("export")
@click.option("--unit", "unit_code", required=True, help="unit whose subtree is exported")
@_runtime.credential_options
@click.option("--reason", required=True, help="why the data is exported (数据导出有据可查)")
@click.option("--group", "groups", multiple=True, help="only these record groups (default: all)")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
def export_cmd(
    ctx: click.Context,
    unit_code: str,
    username: str,
    token: str | None,
    reason: str,
    groups: tuple[str, ...],
    fmt: str,
    output: str,
) -> None:
    """Export the effective files of a unit's subtree (recorded in the audit trail)."""
    rt = _runtime.runtime(ctx, _runtime.config(ctx, require_code=True))
    with session_scope(rt.session_factory) as s:
        pctx = _runtime.acting_as(rt, s, username, token)
        unit = units.get_unit_by_code(s, unit_code)
        data = importexport.export_unit(pctx, unit.id, reason, fmt, groups or None)
    with open(output, "wb") as f:
        f.write(data)
    click.echo(f"wrote {output}")


@click.command("password")
@_runtime.credential_options
@click.pass_context
def password_cmd(ctx: click.Context, username: str, token: str | None) -> None:
    """Change the password of USER (asks for the current one unless --token, then the new one twice)."""
    rt = _runtime.runtime(ctx, _runtime.config(ctx))
    with session_scope(rt.session_factory) as s:
        old = click.prompt("current password", hide_input=True, err=True)
        pctx = _runtime.acting_as(rt, s, username, token, password=None if token else old, allow_initial=True)
        new = click.prompt("new password", hide_input=True, confirmation_prompt=True, err=True)
        accounts.change_password(pctx, old, new)
    click.echo(f"password of {username} changed")


COMMANDS = (template_cmd, import_cmd, export_cmd, password_cmd)
