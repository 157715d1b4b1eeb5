"""Change requests (变更申请): the only way to change information that is already effective.

Requested by an information administrator of the teacher's school with a reason and the changes
``[{group, index, field, new}]`` (``index`` for multi-record groups, ``new`` null clears); the result must
validate. Decided by an information administrator of the school's supervising bureau (主管教育行政部门).
Approval writes the new effective version through
:func:`~provincial_node.teacher_files.effective.write_effective` — all in the caller's transaction.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from common.db import get_for_update
from common.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError, invalid
from provincial_node.accounts import second_factor
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, Scope, authorize, may
from provincial_node.teacher_files import effective
from provincial_node.teacher_files.files import get_teacher, require_held, validate_file, visible_teacher
from provincial_node.teacher_files.models import ChangeRequest, Teacher
from provincial_node.teacher_files.status import ChangeRequestStatus, Decision, HistoryAction


def _apply(data: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for c in changes:
        group, index, field = c["group"], c.get("index"), c["field"]
        if isinstance(out.get(group), list):
            if not isinstance(index, int) or not 0 <= index < len(out[group]):
                raise ValidationError(
                    "change names a record that does not exist",
                    [FieldError(group, field, "记录不存在", "no such record", index, index=index)],
                )
            row = out[group][index]
        else:
            row = out.setdefault(group, {})
        if c.get("new") in (None, "", []):
            row.pop(field, None)
        else:
            row[field] = c["new"]
    return out


def _current(data: dict[str, Any], change: dict[str, Any]) -> Any:
    content = data.get(change["group"])
    index = change.get("index")
    if isinstance(content, list):
        row = content[index] if index is not None and 0 <= index < len(content) else {}
    else:
        row = content or {}
    return row.get(change["field"]) if isinstance(row, dict) else None


def _validate(ctx: ProvinceContext, teacher: Teacher, data: dict[str, Any]) -> dict[str, Any]:
    normalised, errors = validate_file(ctx, teacher, data)
    if errors:
        raise ValidationError("the file would be invalid after this change", errors)
    return normalised


def request_change(ctx: ProvinceContext, teacher_id: int, changes: list[dict[str, Any]], reason: str) -> ChangeRequest:
    actor = ctx.user
    teacher = get_teacher(ctx, teacher_id, Operation.CHANGE_REQUEST_CREATE, lock=True)
    require_held(teacher)
    if not teacher.ever_effective:
        raise ConflictError("the file has no effective information yet: edit the draft instead")
    if not (reason or "").strip():
        raise invalid("change_request", "reason", "须说明变更原因", "a reason is required")
    if (
        not isinstance(changes, list)
        or not changes
        or not all(isinstance(c, dict) and "group" in c and "field" in c for c in changes)
    ):
        raise invalid(
            "change_request",
            "changes",
            "变更内容应为非空列表，每项含 group、field、new",
            "changes must be a non-empty list of {group, index, field, new}",
        )
    catalogue = ctx.catalogue
    unknown = [
        FieldError(
            "change_request",
            "changes",
            "信息集或字段不存在",
            "no such record group or field",
            f"{c['group']}.{c['field']}",
            index=i,
        )
        for i, c in enumerate(changes)
        if c["group"] not in catalogue.groups or not catalogue.groups[c["group"]].has_field(c["field"])
    ]
    if unknown:
        raise ValidationError("a change names an unknown record group or field", unknown)
    for c in changes:
        group = catalogue.group(c["group"])
        if group.has_field(c["field"]) and group.field(c["field"]).filled_by == "workflow":
            raise PermissionDeniedError(f"{c['group']}.{c['field']} is written by a workflow")
    if {"SFZJLXM", "SFZJH"} & {c["field"] for c in changes if c["group"] == "JBXX"}:
        raise ConflictError("the identity document of a file is changed by the identity-correction procedure")
    _validate(ctx, teacher, _apply(teacher.data, changes))
    # each change keeps the effective value it replaces: the request reads the same after it is decided
    stored = [{**c, "old": _current(teacher.data, c)} for c in changes]
    cr = ChangeRequest(teacher_id=teacher.id, requested_by=actor.account_id, reason=reason.strip(), changes=stored)
    ctx.session.add(cr)
    ctx.session.flush()
    school = ctx.session.get(Unit, teacher.unit_id)
    trail.record(
        ctx,
        "change_request.create",
        "change_request",
        cr.id,
        school.path,
        reason=reason,
        teacher=teacher.teacher_number,
    )
    return cr


def decide(ctx: ProvinceContext, request_id: int, decision: str, reason: str) -> ChangeRequest:
    """Approve or reject (with a reason) a pending request, by the school's supervising bureau (a fresh
    security-key check for accounts that use one)."""
    second_factor.require_fresh(ctx, "a decision on a change request")
    actor = ctx.user
    cr = get_for_update(ctx.session, ChangeRequest, request_id)  # the request's row, then its file's (that order)
    if cr is None:
        raise NotFoundError(f"change request {request_id} not found")
    teacher = visible_teacher(ctx, cr.teacher_id, lock=True)
    school = ctx.session.get(Unit, teacher.unit_id)
    authorize(ctx, Operation.CHANGE_REQUEST_DECIDE)
    bureau = ctx.session.get(Unit, school.supervisor_id) if school.supervisor_id else None
    if bureau is None:
        raise ConflictError("the school has no supervising bureau to decide change requests")
    try:
        authorize(ctx, Operation.CHANGE_REQUEST_DECIDE, bureau, hidden=False)
    except PermissionDeniedError:
        raise PermissionDeniedError(
            f"change requests are decided by the school's supervising bureau ({bureau.name})",
            details={"unit": bureau.code, "operation": str(Operation.CHANGE_REQUEST_DECIDE)},
        ) from None
    if cr.status != ChangeRequestStatus.PENDING:
        raise ConflictError(f"change request already {cr.status}")
    if decision not in tuple(Decision):
        raise invalid("change_request", "decision", "只能是 approve 或 reject", "approve or reject", decision)
    if decision == Decision.REJECT and not (reason or "").strip():
        raise invalid("change_request", "reason", "不批准须说明原因", "a rejection needs a reason")
    cr.status = ChangeRequestStatus.APPROVED if decision == Decision.APPROVE else ChangeRequestStatus.REJECTED
    cr.decided_by, cr.decided_at, cr.decision_reason = actor.account_id, ctx.now, reason
    if decision == Decision.APPROVE:
        new_data = _validate(ctx, teacher, _apply(teacher.data, cr.changes))
        effective.write_effective(ctx, teacher, new_data, action=HistoryAction.CHANGE_REQUEST, reason=cr.reason)
    trail.record(
        ctx,
        f"change_request.{decision}",
        "change_request",
        cr.id,
        school.path,
        reason=reason,
        teacher=teacher.teacher_number,
    )
    return cr


def list_requests(ctx: ProvinceContext, status: str | None = ChangeRequestStatus.PENDING) -> list[ChangeRequest]:
    """Change requests of the files in the actor's scope (a teacher: of their own file)."""
    rule = authorize(ctx, Operation.CHANGE_REQUESTS_READ)
    stmt = (
        select(ChangeRequest)
        .join(Teacher, Teacher.id == ChangeRequest.teacher_id)
        .join(Unit, Unit.id == Teacher.unit_id)
    )
    if rule.scope == Scope.SELF:
        stmt = stmt.where(Teacher.id == ctx.user.teacher_id)
    else:
        stmt = stmt.where(Unit.path.startswith(ctx.user.unit_path, autoescape=True))
    if status:
        stmt = stmt.where(ChangeRequest.status == status)
    return list(ctx.session.scalars(stmt.order_by(ChangeRequest.id)))


def waiting_for(ctx: ProvinceContext) -> list[ChangeRequest]:
    """Pending requests the actor's unit decides: those of the schools it supervises."""
    stmt = (
        select(ChangeRequest)
        .join(Teacher, Teacher.id == ChangeRequest.teacher_id)
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(ChangeRequest.status == ChangeRequestStatus.PENDING, Unit.supervisor_id == ctx.user.unit_id)
        .order_by(ChangeRequest.id)
    )
    if not may(ctx.user, Operation.CHANGE_REQUEST_DECIDE):
        return []
    return list(ctx.session.scalars(stmt))
