"""Pages of 调动 and 交流轮岗: start, decide, withdraw, end a rotation, and the trail of every step. Thin: the same
services as the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts import units
from provincial_node.accounts.models import Unit
from provincial_node.context import SCHOOL_LEVELS, Role, current_context
from provincial_node.rules import Operation, authorize, may
from provincial_node.teacher_files import files
from provincial_node.teacher_files.access import file_for
from provincial_node.transfers import local
from provincial_node.transfers.models import Transfer
from provincial_node.transfers.steps import (
    STEPS,
    Step,
    TransferKind,
    TransferStatus,
    is_cross,
    local_step,
    started_here,
    starter_unit_id,
)

bp = Blueprint("transfers_pages", __name__, template_folder="templates")


def _names(ctx: Any, rows: list[Transfer]) -> dict[int, str]:
    ids = {u for t in rows for u in (t.from_unit_id, t.to_unit_id) if u}
    return {u.id: u.name for u in ctx.session.query(Unit).filter(Unit.id.in_(ids))} if ids else {}


@bp.get("/transfers")
def transfer_list() -> str:
    """调动与交流轮岗: what waits for my unit, and every request touching my subtree."""
    ctx = current_context()
    if ctx.user.role == Role.TEACHER:
        abort(403)  # a teacher sees their own requests from 我的档案
    authorize(ctx, Operation.TRANSFERS_READ)
    status = request.args.get("status") or None
    pending = local.pending(ctx)
    rows = local.in_scope(ctx, status)
    return render_template(
        "transfers/transfer_list.html",
        pending=pending,
        rows=rows,
        names=_names(ctx, pending + rows),
        status=status,
        statuses=TransferStatus.choices(),
        school=ctx.user.unit_level in SCHOOL_LEVELS,
        can_start=may(ctx.user, Operation.TRANSFER_START),
    )


@bp.get("/teachers/<int:teacher_id>/transfers")
def for_teacher(teacher_id: int) -> str:
    ctx = current_context()
    file_for(ctx, Operation.TRANSFERS_READ, teacher_id)
    teacher = files.get_teacher(ctx, teacher_id)
    rows = local.for_teacher(ctx, teacher_id)
    return render_template("transfers/for_teacher.html", t=teacher, rows=rows, names=_names(ctx, rows))


def _errors(e: ValidationError) -> dict[str, str]:
    return {err.field: err.reason_zh for err in e.errors}


@bp.route("/transfers/new", methods=["GET", "POST"])
def start_transfer() -> Any:
    """调入申请 (the receiving school): the teacher is named by teacher number and identity document; a teacher of
    another province is requested through the national node."""
    ctx = current_context()
    authorize(ctx, Operation.TRANSFER_START)
    form = request.form
    errors: dict[str, str] = {}
    schools = [u for u in units.in_scope(ctx) if u.level in SCHOOL_LEVELS]
    if request.method == "POST":
        try:
            t = local.start_transfer(
                ctx,
                (form.get("teacher_number") or "").strip().upper(),
                form.get("doc_type") or "1",
                (form.get("doc_number") or "").strip(),
                int(form.get("to_school_id") or 0),
                form.get("reason") or "",
                from_province=(form.get("from_province") or "").strip() or None,
            )
        except ValidationError as e:
            errors = _errors(e)
        except NotFoundError:
            errors = {"teacher_number": "本省没有该教师编号与证件号对应的教师（外省教师请填写调出省份）"}
        except (ConflictError, PermissionDeniedError) as e:
            errors = {"": e.message_zh or _conflict(e)}
        else:
            flash("调动申请已发起，下一步由本单位主管教育行政部门审核。", "success")
            return redirect(url_for(".detail", transfer_id=t.id))
    doc_types = ctx.base_catalogue.table("SFZJLX").codes.values()
    page = render_template(
        "transfers/start_transfer.html", form=form, errors=errors, schools=schools, doc_types=doc_types
    )
    return page, (422 if errors else 200)


def _conflict(e: Exception) -> str:
    text = str(e)
    if "open transfer" in text:
        return "该教师已有进行中的调动或交流轮岗申请。"
    if "already has a file" in text:
        return "该教师在本省已有档案。"
    if "effective file of another school" in text:
        return "只能调入其他学校已生效档案的教师。"
    return "当前情况下不能发起此申请。"


@bp.route("/rotations/new", methods=["GET", "POST"])
def start_rotation() -> Any:
    """交流轮岗 (the sending school): with or without a change of personnel relationship."""
    ctx = current_context()
    form = request.values
    teacher_raw = form.get("teacher_id") or ""
    if not teacher_raw.isdigit() or len(teacher_raw) > 12:
        abort(404)
    file_for(ctx, Operation.ROTATION_START, int(teacher_raw))
    teacher = files.get_teacher(ctx, int(teacher_raw))
    errors: dict[str, str] = {}
    if request.method == "POST":
        with_transfer = form.get("with_transfer") == "1"
        try:
            t = local.start_rotation(
                ctx,
                teacher.id,
                with_transfer=with_transfer,
                rotation_type=form.get("rotation_type") or "",
                start_month=form.get("start_month") or "",
                end_month=form.get("end_month") or None,
                reason=form.get("reason") or "",
                to_school_id=int(form["to_school_id"]) if (form.get("to_school_id") or "").isdigit() else None,
                to_unit_name=(form.get("to_unit_name") or "").strip() or None,
                to_province=(form.get("to_province") or "").strip() or None,
                to_school_code=(form.get("to_school_code") or "").strip() or None,
            )
        except ValidationError as e:
            errors = _errors(e)
        except NotFoundError:
            errors = {"to_school_id": "接收学校不存在"}
        except (ConflictError, PermissionDeniedError) as e:
            errors = {"": e.message_zh or _conflict(e)}
        else:
            flash("交流轮岗申请已发起。", "success")
            return redirect(url_for(".detail", transfer_id=t.id))
    all_schools = [u for u in ctx.session.query(Unit).filter(Unit.level == "school").order_by(Unit.code).limit(3000)]
    page = render_template(
        "transfers/start_rotation.html",
        t=teacher,
        form=form,
        errors=errors,
        schools=all_schools,
        types=[c for c in ctx.base_catalogue.table("JLLGLX").codes.values() if c.code != "0"],
    )
    return page, (422 if errors else 200)


@bp.get("/transfers/<int:transfer_id>")
def detail(transfer_id: int) -> str:
    """One request: who decides next (in this province or the other one), the trail of every step."""
    ctx = current_context()
    authorize(ctx, Operation.TRANSFERS_READ)
    t = local.get_transfer(ctx, transfer_id)
    waits_for_me = any(p.id == t.id for p in local.pending(ctx))
    steps = STEPS[t.kind]
    remote_next = bool(
        t.next_step and is_cross(t) and t.next_step != Step.COMPLETION and not local_step(t, t.next_step)
    )
    can_withdraw = (
        t.status == TransferStatus.OPEN
        and ctx.user.unit_id == starter_unit_id(t)
        and (not is_cross(t) or started_here(t))
    )
    can_end = (
        t.kind == TransferKind.ROTATION and t.status == TransferStatus.COMPLETED and ctx.user.unit_id == t.from_unit_id
    )
    return render_template(
        "transfers/detail.html",
        t=t,
        names=_names(ctx, [t]),
        steps=steps,
        waits_for_me=waits_for_me,
        remote_next=remote_next,
        can_withdraw=can_withdraw,
        can_end=can_end,
    )


@bp.post("/transfers/<int:transfer_id>/decision")
def decide(transfer_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.TRANSFER_DECIDE)
    decision = request.form.get("decision") or ""
    try:
        local.decide(ctx, transfer_id, decision, (request.form.get("reason") or "").strip() or None)
    except ValidationError as e:
        flash("；".join(err.reason_zh for err in e.errors), "danger")
    except (ConflictError, PermissionDeniedError) as e:
        flash(e.message_zh or "该申请当前不在本单位办理的环节。", "warning")
    else:
        flash("已同意。" if decision == "approve" else "已拒绝。", "success")
    return redirect(url_for(".detail", transfer_id=transfer_id))


@bp.post("/transfers/<int:transfer_id>/withdraw")
def withdraw(transfer_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.TRANSFER_WITHDRAW)
    try:
        local.withdraw(ctx, transfer_id, (request.form.get("reason") or "").strip())
    except ValidationError as e:
        flash("；".join(err.reason_zh for err in e.errors), "danger")
    except (ConflictError, PermissionDeniedError) as e:
        flash(e.message_zh or "只有发起单位可以在最后一步之前撤回。", "warning")
    else:
        flash("已撤回（跨省申请在国家级节点确认后关闭）。", "success")
    return redirect(url_for(".detail", transfer_id=transfer_id))


@bp.post("/transfers/<int:transfer_id>/end-rotation")
def end_rotation(transfer_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.ROTATION_END)
    try:
        local.end_rotation(ctx, transfer_id)
    except (ConflictError, PermissionDeniedError) as e:
        flash(e.message_zh or "只有派出学校可以结束已完成的交流轮岗。", "warning")
    else:
        flash("交流轮岗已结束，人员状态恢复为在本单位任职。", "success")
    return redirect(url_for(".detail", transfer_id=transfer_id))


BLUEPRINTS = (bp,)
