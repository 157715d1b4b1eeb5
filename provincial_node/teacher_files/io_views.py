"""Pages of 导入导出 (templates, import with the per-row report, audited export) and 地方拓展指标."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for

from common.errors import ConflictError, NotFoundError, TmisError, ValidationError
from common.http import attachment
from provincial_node.accounts import units
from provincial_node.accounts.models import Unit
from provincial_node.context import SCHOOL_LEVELS, current_context, runtime
from provincial_node.rules import Operation, authorize, may
from provincial_node.tasks import service as tasks
from provincial_node.tasks.models import Task
from provincial_node.tasks.status import FINISHED, TaskState
from provincial_node.teacher_files import custom_fields, exporting, importexport, sheets
from provincial_node.teacher_files.import_report import error_workbook

bp = Blueprint("io_pages", __name__, template_folder="templates")
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}
REPORT_DAYS = 7  # uploaded files are kept this long for their error reports


def _reports_dir() -> Path:
    path = runtime().config.data_dir / "import-reports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _missing() -> Any:
    raise NotFoundError("unit not found", message_zh="单位不存在")


def _download(data: bytes, fmt: str, name: str) -> Response:
    return Response(data, mimetype=MIME[fmt], headers={"Content-Disposition": attachment(f"{name}.{fmt}")})


@bp.get("/imports-exports")
def import_export() -> str:
    ctx = current_context()
    if not may(ctx.user, Operation.FILES_EXPORT):
        authorize(ctx, Operation.FILES_IMPORT)  # 403 for a role that may do neither
    return _import_export_page(ctx)


@bp.get("/templates/<group>.<fmt>")
def template(group: str, fmt: str) -> Response:
    """An import template (xlsx with the code lists, or CSV)."""
    if fmt not in MIME:
        abort(404)
    ctx = current_context()
    if group.upper() not in ctx.catalogue.groups:
        abort(404)
    return _download(sheets.template(ctx, group, fmt), fmt, group.upper())


@bp.post("/imports")
def upload() -> Any:
    """导入: one group's xlsx/csv for a school, run as a background task (后台任务): the next page follows its
    progress; good rows are kept, every bad row is reported on screen and in a spreadsheet with the bad cells
    marked."""
    ctx = current_context()
    authorize(ctx, Operation.FILES_IMPORT)
    errors: dict[str, str] = {}
    upload = request.files.get("file")
    group = (request.form.get("group") or "").upper()
    school_raw = request.form.get("school_id") or ""
    limit = ctx.settings.import_max_bytes
    if upload is None or not upload.filename:
        errors["file"] = "请选择要导入的文件"
    if group not in ctx.catalogue.groups:
        errors["group"] = "请选择信息集"
    if not school_raw.isdigit() or len(school_raw) > 12:
        errors["school_id"] = "请选择学校"
    data = upload.read(limit + 1) if upload is not None else b""
    if len(data) > limit:
        errors["file"] = f"文件超过 {limit // (1024 * 1024)} MB，请分批导入"
    name = ((upload and upload.filename) or "").lower()
    fmt = "csv" if name.endswith((".csv", ".txt")) else "xlsx"
    if not errors:
        authorize(ctx, Operation.FILES_IMPORT, ctx.session.get(Unit, int(school_raw)) or _missing())
        try:
            task = importexport.start_import_task(ctx, int(school_raw), group, data, fmt)
        except ValidationError as e:
            errors["file"] = "；".join(f"{err.column or err.label or ''} {err.reason_zh}".strip() for err in e.errors)
        except TmisError as e:
            errors["school_id"] = e.message_zh or "不能为该学校导入"
        else:
            _keep_upload(task.id, data, fmt)
            return redirect(url_for(".import_task", task_id=task.id))
    page = _import_export_page(ctx, errors=errors, chosen={"group": group, "school_id": school_raw})
    return page, 422


def _import_export_page(ctx: Any, **extra: Any) -> str:
    scope = units.in_scope(ctx)
    return render_template(
        "teacher_files/import_export.html",
        groups=ctx.catalogue.ordered_groups,
        schools=[u for u in scope if u.level in SCHOOL_LEVELS][:2000],
        export_units=scope[:2000],
        can_import=may(ctx.user, Operation.FILES_IMPORT),
        recent=tasks.list_tasks(ctx, kind=importexport.IMPORT_KIND, limit=10),
        group_labels={g.code: g.label for g in ctx.catalogue.ordered_groups},
        max_mb=ctx.settings.import_max_bytes // (1024 * 1024),
        **{"errors": {}, **extra},
    )


def _keep_upload(task_id: int, data: bytes, fmt: str) -> None:
    """The uploaded file, kept (0600, in the data directory) to mark its bad cells in the error report; files
    older than REPORT_DAYS go."""
    folder = _reports_dir()
    cutoff = time.time() - REPORT_DAYS * 86400
    for old in folder.glob("task-*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    path = folder / f"task-{task_id}.{fmt}"
    path.touch(mode=0o600)
    path.write_bytes(data)


def _import_task(task_id: int) -> Task:
    ctx = current_context()
    task = tasks.get(ctx, task_id)  # not visible → 404
    if task.kind != importexport.IMPORT_KIND:
        abort(404)
    return task


@bp.get("/imports/<int:task_id>")
def import_task(task_id: int) -> str:
    """One import: its progress while it runs (the page refreshes itself, or JavaScript follows it), then the
    counts and every bad row, with the error report to download."""
    task = _import_task(task_id)
    ctx = current_context()
    school = ctx.session.get(Unit, task.unit_id)
    group = ctx.catalogue.group(task.params["group"]) if task.params.get("group") in ctx.catalogue.groups else None
    result = task.result or {}
    return render_template(
        "teacher_files/import_task.html",
        task=task,
        school=school,
        group=group,
        result=result,
        finished=task.state in FINISHED,
        has_report=bool(result.get("errors")) and _upload_of(task) is not None,
        can_cancel=task.state not in FINISHED and task.owner_id == ctx.user.account_id,
    )


@bp.get("/imports/<int:task_id>/status")
def import_status(task_id: int) -> Response:
    """The progress as JSON for the page's script (the session's own scope; the API has /api/v1/tasks)."""
    task = _import_task(task_id)
    return jsonify(
        state=task.state,
        state_label=TaskState.label_of(task.state),
        done=task.done,
        total=task.total,
        finished=task.state in FINISHED,
    )


@bp.post("/imports/<int:task_id>/cancel")
def import_cancel(task_id: int) -> Any:
    task = _import_task(task_id)
    try:
        tasks.cancel(current_context(), task.id)
    except ConflictError:
        flash("导入已经结束，无需取消。", "info")
    else:
        flash("已请求取消：已导入的部分保留，其余不再导入。", "warning")
    return redirect(url_for(".import_task", task_id=task_id))


def _upload_of(task: Task) -> Path | None:
    path = _reports_dir() / f"task-{task.id}.{task.params.get('format', 'xlsx')}"
    return path if path.is_file() else None


@bp.get("/imports/<int:task_id>/report.xlsx")
def report(task_id: int) -> Response:
    """The error report of an import (the uploaded file, bad cells marked), for the account that imported."""
    task = _import_task(task_id)
    path = _upload_of(task)
    errors = (task.result or {}).get("errors") or []
    if task.owner_id != current_context().user.account_id or path is None or not errors:
        abort(404)
    data = error_workbook(path.read_bytes(), task.params.get("format", "xlsx"), errors)
    return _download(data, "xlsx", "导入错误报告")


@bp.post("/exports")
def export() -> Any:
    """导出: the effective files of a unit's subtree, with the required purpose (recorded in the audit trail)."""
    ctx = current_context()
    unit_raw = request.form.get("unit_id") or ""
    reason = (request.form.get("reason") or "").strip()
    fmt = request.form.get("format") or "xlsx"
    groups = request.form.getlist("groups") or None
    if fmt not in MIME or not unit_raw.isdigit():
        abort(400)
    authorize(ctx, Operation.FILES_EXPORT, ctx.session.get(Unit, int(unit_raw)) or _missing())
    try:
        data = exporting.export_unit(ctx, int(unit_raw), reason, fmt, groups)
    except ValidationError as e:
        flash("导出未完成：" + "；".join(err.reason_zh for err in e.errors), "danger")
        return redirect(url_for(".import_export") + "#export")
    return _download(data, fmt, "教师档案导出")


@bp.route("/custom-fields", methods=["GET", "POST"])
def custom_field_list() -> Any:
    """地方拓展指标: define one (a code table or its own codes), retire one."""
    ctx = current_context()
    authorize(ctx, Operation.CUSTOM_FIELDS_MANAGE)
    errors: dict[str, str] = {}
    if request.method == "POST":
        spec: dict[str, Any] = {
            "group_code": request.form.get("group_code") or "",
            "code": (request.form.get("code") or "").strip().upper(),
            "label": request.form.get("label") or "",
            "type": request.form.get("type") or "",
            "filled_by": request.form.get("filled_by") or "school",
            "required": request.form.get("required") == "1",
        }
        if request.form.get("code_table"):
            spec["code_table"] = request.form["code_table"]
        codes_text = (request.form.get("codes") or "").strip()
        if codes_text:
            codes = {}
            for line in codes_text.splitlines():
                code, _, text = line.strip().partition(" ")
                if code:
                    codes[code] = text.strip() or code
            spec["codes"] = codes
        try:
            field = custom_fields.define(ctx, spec)
        except ValidationError as e:
            errors = {err.field: err.reason_zh for err in e.errors}
        except ConflictError:
            errors = {"code": "该信息集已有同一代码的指标（停用的指标也保留代码）"}
        else:
            flash(f"已新增地方拓展指标 {field.label}（{field.code}）。", "success")
            return redirect(url_for(".custom_field_list"))
    page = render_template(
        "teacher_files/custom_fields.html",
        rows=custom_fields.all_fields(ctx.session),
        groups=ctx.base_catalogue.ordered_groups,
        tables=sorted(ctx.base_catalogue.code_tables.values(), key=lambda t: t.id),
        errors=errors,
        form=request.form,
    )
    return page, (422 if errors else 200)


@bp.post("/custom-fields/<int:field_id>/retire")
def retire(field_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.CUSTOM_FIELDS_MANAGE)
    try:
        custom_fields.retire(ctx, field_id, (request.form.get("reason") or "").strip() or "停用")
    except TmisError as e:
        flash(e.message_zh or "不能停用该指标", "danger")
    else:
        flash("已停用；已填写的值仍可查看。", "success")
    return redirect(url_for(".custom_field_list"))


BLUEPRINTS = (bp,)
