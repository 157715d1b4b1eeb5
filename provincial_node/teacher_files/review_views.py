"""Pages of the review chain and change requests (审核, 批量审核, 变更申请). Thin: the same services as the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts.models import Account, Unit
from provincial_node.context import Role, current_context
from provincial_node.rules import Operation, authorize
from provincial_node.teacher_files import change_requests as crs
from provincial_node.teacher_files import files, review
from provincial_node.teacher_files.access import file_for
from provincial_node.teacher_files.history import diff
from provincial_node.teacher_files.models import ChangeRequest, Teacher
from provincial_node.teacher_files.status import ChangeRequestStatus, Decision

bp = Blueprint("review_pages", __name__, template_folder="templates")
PAGE_SIZE = 50


@bp.get("/review")
def review_queue() -> str:
    """审核: the files waiting for my unit's review, oldest first."""
    ctx = current_context()
    authorize(ctx, Operation.FILE_REVIEW)
    after = request.args.get("after", "")
    after_id = int(after) if after.isdigit() and len(after) < 12 else 0
    rows, total = review.review_queue_page(ctx, after_id=after_id, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    names = _unit_names(ctx, {t.unit_id for t in rows})
    return render_template(
        "teacher_files/review_queue.html",
        rows=rows,
        names=names,
        total=total,
        next_url=url_for(".review_queue", after=rows[-1].id) if more else None,
        first_url=url_for(".review_queue") if after_id else None,
    )


def _unit_names(ctx: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id: u.name for u in ctx.session.query(Unit).filter(Unit.id.in_(ids))}


@bp.get("/review/<int:teacher_id>")
def review_file(teacher_id: int) -> str:
    """One file to review: the working copy with what changed against the effective version, and the decision.
    Opened by the unit the file waits for (a file not under review has nothing to decide: its file page)."""
    ctx = current_context()
    teacher = ctx.session.get(Teacher, teacher_id)
    if teacher is None:
        abort(404)
    school = ctx.session.get(Unit, teacher.unit_id)
    _level, waiting_unit, _chain = review.reviewing_unit(ctx, teacher)
    authorize(ctx, Operation.FILE_REVIEW, waiting_unit or school, hidden=not ctx.user.contains(school))
    teacher = files.get_teacher(ctx, teacher_id)
    return render_template(
        "teacher_files/review_file.html",
        t=teacher,
        changes=diff(teacher.data, teacher.draft),
        waits_for_me=review.waits_for_actor(ctx, teacher),
        entered_by_me=ctx.user.account_id in review.entered_by(ctx, teacher),
        label_of=_field_label(ctx),
        error=None,
    )


def _field_label(ctx: Any) -> Any:
    catalogue = ctx.catalogue

    def field_label(group: str, field: str) -> str:
        if group in catalogue.groups and catalogue.group(group).has_field(field):
            return f"{catalogue.group(group).label} · {catalogue.group(group).field(field).label}"
        return f"{group}.{field}"

    return field_label


@bp.post("/review/<int:teacher_id>")
def decide(teacher_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.FILE_REVIEW)
    decision = request.form.get("decision", "")
    reason = (request.form.get("reason") or "").strip() or None
    try:
        review.review(ctx, teacher_id, decision, reason)
    except ValidationError as e:
        flash("；".join(err.reason_zh for err in e.errors), "danger")
        return redirect(url_for(".review_file", teacher_id=teacher_id))
    except (ConflictError, PermissionDeniedError) as e:
        flash(e.message_zh or "该档案当前不在您的审核环节。", "warning")
        return redirect(url_for(".review_queue"))
    flash("已审核通过。" if decision == Decision.APPROVE else "已退回，原因已告知填报单位。", "success")
    return redirect(url_for(".review_queue"))


@bp.post("/review/bulk")
def bulk_confirm() -> str:
    """批量审核, step 1: the selected files that wait for me, listed for confirmation (works without JavaScript)."""
    ctx = current_context()
    authorize(ctx, Operation.FILE_REVIEW)
    ids = [int(x) for x in request.form.getlist("teacher_id") if x.isdigit() and len(x) < 12]
    chosen = [t for t in (ctx.session.get(Teacher, i) for i in ids) if t is not None]
    waiting = [t for t in chosen if _visible(ctx, t) and review.waits_for_actor(ctx, t)]
    return render_template(
        "teacher_files/bulk_confirm.html",
        rows=waiting,
        skipped=len(chosen) - len(waiting),
        names=_unit_names(ctx, {t.unit_id for t in waiting}),
    )


def _visible(ctx: Any, teacher: Teacher) -> bool:
    try:
        files.get_teacher(ctx, teacher.id)
    except NotFoundError:  # not in the actor's scope
        return False
    return True


@bp.post("/review/bulk/approve")
def bulk_approve() -> Any:
    """批量审核, step 2: approve the confirmed files, each as a single approval would (history, audit)."""
    ctx = current_context()
    authorize(ctx, Operation.FILE_REVIEW)
    approved, skipped = 0, 0
    reason = (request.form.get("reason") or "").strip() or "批量审核通过"
    for raw in request.form.getlist("teacher_id"):
        if not raw.isdigit() or len(raw) >= 12:
            continue
        try:
            review.review(ctx, int(raw), Decision.APPROVE, reason)
            approved += 1
        except (ConflictError, PermissionDeniedError):
            skipped += 1
    flash(
        f"已审核通过 {approved} 份档案" + (f"，{skipped} 份已不在您的审核环节，未处理" if skipped else "") + "。",
        "success",
    )
    return redirect(url_for(".review_queue"))


@bp.get("/changes")
def change_requests() -> str:
    """变更申请: those waiting for my decision (bureaus) and those of my unit (schools)."""
    ctx = current_context()
    if ctx.user.role == Role.TEACHER:
        abort(403)  # the list is the staff's; a teacher sees what is pending on 我的档案
    authorize(ctx, Operation.CHANGE_REQUESTS_READ)
    status = request.args.get("status") or ChangeRequestStatus.PENDING
    rows = crs.list_requests(ctx, status)
    waiting = {cr.id for cr in crs.waiting_for(ctx)}
    teachers = {t.id: t for t in ctx.session.query(Teacher).filter(Teacher.id.in_({c.teacher_id for c in rows}))}
    return render_template(
        "teacher_files/change_list.html",
        rows=rows,
        waiting=waiting,
        teachers=teachers,
        status=status,
        statuses=ChangeRequestStatus.choices(),
    )


@bp.route("/teachers/<int:teacher_id>/changes/new", methods=["GET", "POST"])
def new_change(teacher_id: int) -> Any:
    """变更申请, new: the effective values of one group beside the inputs for the new ones, with the reason."""
    ctx = current_context()
    file_for(ctx, Operation.CHANGE_REQUEST_CREATE, teacher_id)
    teacher = files.get_teacher(ctx, teacher_id)
    catalogue = ctx.catalogue
    group_code = (request.values.get("group") or "JBXX").upper()
    if group_code not in catalogue.groups or group_code not in teacher.data:
        abort(404)
    g = catalogue.group(group_code)
    effective = teacher.data.get(group_code)
    rows = effective if isinstance(effective, list) else [effective or {}]
    errors: dict[str, str] = {}
    if request.method == "POST":
        changes = []
        for i, row in enumerate(rows):
            for fd in g.fields:
                if fd.filled_by == "workflow" or fd.code in ("SFZJH", "SFZJLXM"):
                    continue
                name = f"c.{i}.{fd.code}"
                if name not in request.form:
                    continue
                new = request.form.getlist(name) if fd.type == "codes" else (request.form.get(name) or "").strip()
                new = [v for v in new if v] if isinstance(new, list) else new
                old = row.get(fd.code)
                if (new or None) != (old or None) and str(new) != str(old):
                    changes.append(
                        {"group": group_code, "index": i if g.multiple else None, "field": fd.code, "new": new or None}
                    )
        reason = (request.form.get("reason") or "").strip()
        if not changes:
            errors[""] = "没有修改任何值。"
        else:
            try:
                cr = crs.request_change(ctx, teacher.id, changes, reason)
            except ValidationError as e:
                errors = {
                    (f"c.{err.index or 0}.{err.field}" if err.field != "reason" else "reason"): err.reason_zh
                    for err in e.errors
                }
            except (ConflictError, PermissionDeniedError) as e:
                errors[""] = e.message_zh or "不能对该信息提出变更申请。"
            else:
                flash("变更申请已提交，等待主管教育行政部门审批。", "success")
                return redirect(url_for(".change_detail", request_id=cr.id))
    return (
        render_template(
            "teacher_files/change_new.html",
            t=teacher,
            g=g,
            rows=rows,
            groups=[catalogue.group(c) for c in teacher.data if c in catalogue.groups],
            errors=errors,
            form=request.form,
        ),
        422 if errors else 200,
    )


@bp.get("/changes/<int:request_id>")
def change_detail(request_id: int) -> str:
    """变更申请: old and new values side by side; the bureau decides here."""
    ctx = current_context()
    cr = ctx.session.get(ChangeRequest, request_id)
    if cr is None:
        abort(404)
    if ctx.user.role == Role.TEACHER:
        abort(403)
    file_for(ctx, Operation.CHANGE_REQUESTS_READ, cr.teacher_id)  # not in scope → 404
    teacher = files.get_teacher(ctx, cr.teacher_id)
    field_label = _field_label(ctx)
    lines = []
    for c in cr.changes:
        current = teacher.data.get(c["group"])
        row = current[c["index"]] if isinstance(current, list) and c.get("index") is not None else (current or {})
        lines.append(
            {
                "label": field_label(c["group"], c["field"]),
                "index": c.get("index"),
                "group": c["group"],
                "field": c["field"],
                # the value replaced, as recorded with the request (older requests: the current one)
                "old": c["old"] if "old" in c else (row.get(c["field"]) if isinstance(row, dict) else None),
                "new": c.get("new"),
            }
        )
    people = {
        a.id: a.real_name
        for a in ctx.session.query(Account).filter(Account.id.in_({cr.requested_by, cr.decided_by or 0}))
    }
    waiting = cr.id in {x.id for x in crs.waiting_for(ctx)}
    return render_template(
        "teacher_files/change_detail.html", cr=cr, t=teacher, lines=lines, people=people, waiting=waiting
    )


@bp.post("/changes/<int:request_id>/decision")
def change_decide(request_id: int) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.CHANGE_REQUEST_DECIDE)
    decision = request.form.get("decision", "")
    reason = (request.form.get("reason") or "").strip()
    try:
        crs.decide(ctx, request_id, decision, reason)
    except ValidationError as e:
        flash("；".join(err.reason_zh for err in e.errors), "danger")
    except (ConflictError, PermissionDeniedError) as e:
        flash(e.message_zh or "您不能审批这份申请。", "warning")
    else:
        flash("已批准，变更已生效。" if decision == Decision.APPROVE else "已驳回。", "success")
    return redirect(url_for(".change_detail", request_id=request_id))


BLUEPRINTS = (bp,)
