"""``tmis province template | import | export``: Excel/CSV templates, batch import, audited export."""

from __future__ import annotations

import click
from tqdm import tqdm

from common.db import session_scope
from common.text import csv_bytes
from provincial_node.accounts import accounts, units
from provincial_node.cli import _runtime
from provincial_node.tasks.models import Task
from provincial_node.tasks.runner import claim_next, new_runner_id, run_task
from provincial_node.tasks.status import TaskState
from provincial_node.teacher_files import exporting, importexport, sheets


@click.command("template")
@click.option("--group", "group_code", required=True, help="record group code, e.g. JBXX, GNPX")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
def template_cmd(ctx: click.Context, group_code: str, fmt: str, output: str) -> None:
    """Write the import template of a record group (Chinese headers; xlsx includes the code lists)."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        data = sheets.template(rt.context(s), group_code, fmt)
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
    """Import an xlsx/csv file of one record group for a school: bad rows are reported, good rows kept. Runs as a
    background task in this process (committed every TMIS_IMPORT_CHUNK_ROWS rows, visible in GET /api/v1/tasks);
    Ctrl-C stops it between chunks, keeping the rows before."""
    fmt = "csv" if file.lower().endswith(".csv") else "xlsx"
    rt = _runtime.runtime(ctx, _runtime.config(ctx, require_code=True))
    with open(file, "rb") as f:
        data = f.read()
    with session_scope(rt.session_factory, write=True) as s:
        pctx = _runtime.acting_as(rt, s, username, token)
        school = units.get_unit_by_code(s, school_code)
        task_id = importexport.start_import_task(pctx, school.id, group_code, data, fmt).id
    runner = new_runner_id()
    if claim_next(rt, runner, task_id) is None:
        raise click.ClickException(
            f"task {task_id} was taken by a running server; follow it with GET /api/v1/tasks/{task_id}"
        )
    with tqdm(total=0, unit="row", desc=f"import {group_code}", disable=None) as bar:

        def progress(done: int, total: int | None) -> None:
            bar.total = total or 0
            bar.update(done - bar.n)

        run_task(rt, task_id, runner, on_progress=progress)
    with session_scope(rt.session_factory) as s:
        task = s.get(Task, task_id)
        state, result, error = task.state, task.result or {}, task.error
    errors = result.get("errors", [])
    if "rows" in result:
        click.echo(
            f"{result['rows']} rows: {result['created']} created, {result['updated']} updated, "
            f"{result['unchanged']} unchanged, {result['failed']} failed (task {task_id}, {state})"
        )
    if error:
        click.echo(f"task {task_id} {state}: {error}", err=True)
    for e in errors[:20]:
        click.echo(
            f"  row {e.get('row')} column {e.get('column')}: {e['reason_zh']} / {e['reason_en']} "
            f"(value {e.get('value')!r})",
            err=True,
        )
    if report and errors:
        with open(report, "wb") as f:
            fields = ["row", "column", "value", "reason_zh", "reason_en"]
            f.write(csv_bytes([fields, *([e.get(k) for k in fields] for e in errors)]))
        click.echo(f"all {len(errors)} errors written to {report}")
    if state != TaskState.DONE or result.get("failed"):
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
    with session_scope(rt.session_factory, write=True) as s:
        pctx = _runtime.acting_as(rt, s, username, token)
        unit = units.get_unit_by_code(s, unit_code)
        data = exporting.export_unit(pctx, unit.id, reason, fmt, groups or None)
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
