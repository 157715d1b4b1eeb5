"""Transfers (调动) and exchange rotation (交流轮岗) inside a province (暂行办法 arts. 23–24, DESIGN §7).

Each step is decided by an information administrator of the unit named (the kinds and their steps are in
:mod:`.steps`); any step may reject with a reason; the starter may withdraw before the last step; open
requests expire after ``TMIS_TRANSFER_EXPIRY_DAYS`` (default 60).

When a file moves, 工作经历 gets the closing entry (the old school, ending this month) and the opening
entry (the new school); the file's new effective version is written by the teacher-file area's one
effective-write path (history, and the outbox where core indicators changed). Every step is in the audit
trail and visible to every party in its own scope.

Across provinces (跨省) the same steps are split between the two nodes and the rest travels through the
national node: :mod:`.cross_province`. Once a cross-province request has left the node, only the national
node expires it.
"""

from __future__ import annotations

import copy
import datetime as dt

from sqlalchemy import or_, select

from common.catalogue.codes import PersonStatus
from common.db import get_for_update
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, invalid
from common.identity import IdentityError, validate_identity
from provincial_node.accounts.access import province_unit, unit_in_scope
from provincial_node.accounts.models import Account, Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, Role, UnitLevel
from provincial_node.rules import Operation, Scope, authorize
from provincial_node.teacher_files import effective, work_history
from provincial_node.teacher_files.files import get_teacher
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import Decision, FileStatus, HistoryAction
from provincial_node.transfers import cross_province
from provincial_node.transfers.models import Transfer
from provincial_node.transfers.steps import (
    STEPS,
    Side,
    Step,
    TransferKind,
    TransferStatus,
    add_step,
    advance,
    close,
    is_cross,
    local_step,
    sent,
    started_here,
    starter_unit_id,
)
from sync_protocol.records import RecordOp


def _unit_for(ctx: ProvinceContext, t: Transfer, step: str | None) -> Unit | None:
    """The unit deciding ``step`` in this node (None for a step decided in another province)."""
    if step is None or step not in STEPS[t.kind] or not local_step(t, step):
        return None
    school = ctx.session.get(Unit, t.to_unit_id if step.startswith("receiving") else t.from_unit_id)
    if step.endswith("bureau"):
        return ctx.session.get(Unit, school.supervisor_id)
    return school


def _open_for(ctx: ProvinceContext, teacher_id: int) -> Transfer | None:
    stmt = select(Transfer).where(Transfer.teacher_id == teacher_id, Transfer.status == TransferStatus.OPEN)
    return ctx.session.scalar(stmt)


def start_transfer(
    ctx: ProvinceContext,
    teacher_number: str,
    doc_type: str,
    doc_number: str,
    to_school_id: int,
    reason: str,
    *,
    from_province: str | None = None,
) -> Transfer:
    """The receiving school asks for a teacher, identified by teacher number and identity document. A teacher
    of another province (``from_province``; by default the teacher number's prefix when the number is not
    held here, or the province the teacher was transferred to) is requested through the national node."""
    session = ctx.session
    authorize(ctx, Operation.TRANSFER_START)
    school = unit_in_scope(ctx, to_school_id)
    authorize(ctx, Operation.TRANSFER_START, school)
    if school.level != UnitLevel.SCHOOL:
        raise PermissionDeniedError("a transfer is started by the receiving school's information administrator")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "须说明调动原因", "a reason is required")
    try:
        number = validate_identity(doc_type, doc_number).number
    except IdentityError as e:
        raise invalid("transfer", "doc_number", e.reason_zh, e.reason_en, doc_number) from None
    held = session.scalar(select(Teacher).where(Teacher.teacher_number == teacher_number))
    if from_province is None:
        if held is None:
            from_province = teacher_number[:2]
        elif held.status == FileStatus.TRANSFERRED_OUT:  # the teacher left: ask the province they went to
            from_province = cross_province.where_it_went(ctx, teacher_number) or teacher_number[:2]
        else:
            from_province = ctx.province
    if from_province != ctx.province:
        return cross_province.start_transfer(ctx, from_province, teacher_number, doc_type, number, school, reason)
    teacher = held
    if teacher is None or (teacher.doc_type, teacher.doc_number) != (doc_type, number):
        raise NotFoundError(
            "no teacher in this province with that teacher number and identity document "
            "(a teacher of another province is requested through the national node)"
        )
    if not teacher.ever_effective or teacher.status == FileStatus.TRANSFERRED_OUT or teacher.unit_id == school.id:
        raise ConflictError("only an effective file of another school can be transferred here")
    return _create(ctx, TransferKind.TRANSFER, teacher, teacher.unit_id, school.id, None, reason)


def start_rotation(
    ctx: ProvinceContext,
    teacher_id: int,
    *,
    with_transfer: bool,
    rotation_type: str,
    start_month: str,
    end_month: str | None,
    reason: str,
    to_school_id: int | None = None,
    to_unit_name: str | None = None,
    to_province: str | None = None,
    to_school_code: str | None = None,
) -> Transfer:
    """The sending school starts an exchange rotation (with or without a change of personnel relationship).

    With a change of personnel relationship to a school of another province, name ``to_province``,
    ``to_school_code`` (its 学校标识码) and ``to_unit_name``; the request goes through the national node."""
    teacher = get_teacher(ctx, teacher_id, Operation.ROTATION_START)
    if not teacher.ever_effective:
        raise ConflictError("only an effective file can rotate")
    if rotation_type not in ctx.base_catalogue.table("JLLGLX") or rotation_type == "0":
        raise invalid("transfer", "rotation_type", "交流轮岗类型无效", "unknown 交流轮岗类型", rotation_type)
    if with_transfer and to_province and to_province != ctx.province:
        if not (to_school_code or "").strip() or not (to_unit_name or "").strip():
            raise invalid(
                "transfer",
                "to_school_code",
                "跨省交流轮岗须填写接收学校标识码和名称",
                "a cross-province rotation names the receiving school's code and name",
                to_school_code,
            )
        t = _create(ctx, TransferKind.ROTATION_TRANSFER, teacher, teacher.unit_id, None, to_unit_name.strip(), reason)
        t.rotation_type, t.start_month, t.end_month = rotation_type, start_month, end_month
        cross_province.mark_cross(t, Side.FROM, to_province, teacher, to_school_code.strip(), to_unit_name.strip())
        return t
    to_school = _anywhere_in_province(ctx, to_school_id) if to_school_id else None
    if with_transfer and (to_school is None or to_school.level != UnitLevel.SCHOOL):
        raise invalid(
            "transfer",
            "to_school_id",
            "调动人事关系的交流轮岗须指定本省接收学校",
            "a rotation with personnel change names the receiving school",
            to_school_id,
        )
    if to_school is None and not (to_unit_name or "").strip():
        raise invalid("transfer", "to_unit_name", "须指定交流轮岗单位", "the rotation unit is required")
    if to_school is not None and to_school.id == teacher.unit_id:
        raise invalid("transfer", "to_school_id", "交流轮岗单位不能是本校", "the rotation unit must be another unit")
    kind = TransferKind.ROTATION_TRANSFER if with_transfer else TransferKind.ROTATION
    t = _create(
        ctx,
        kind,
        teacher,
        teacher.unit_id,
        to_school.id if to_school else None,
        to_unit_name or (to_school.name if to_school else None),
        reason,
    )
    t.rotation_type, t.start_month, t.end_month = rotation_type, start_month, end_month
    return t


def _anywhere_in_province(ctx: ProvinceContext, unit_id: int) -> Unit:
    """The rotation target may be anywhere in the province."""
    unit = ctx.session.get(Unit, unit_id)
    if unit is None or not unit.path.startswith(province_unit(ctx.session).path):
        raise NotFoundError(f"unit {unit_id} not found", details={"unit_id": unit_id})
    return unit


def _create(
    ctx: ProvinceContext,
    kind: TransferKind,
    teacher: Teacher,
    from_id: int,
    to_id: int | None,
    to_name: str | None,
    reason: str,
) -> Transfer:
    # the file's row first: two requests for the same teacher at once would both find none open, and both open one
    teacher = get_for_update(ctx.session, Teacher, teacher.id)
    if teacher.status == FileStatus.TRANSFERRED_OUT:
        raise ConflictError("the teacher was transferred to another province; the file is read-only here")
    if _open_for(ctx, teacher.id):
        raise ConflictError("this teacher already has an open transfer or rotation")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "须说明原因", "a reason is required")
    now = ctx.now
    t = Transfer(
        kind=kind,
        teacher_id=teacher.id,
        from_unit_id=from_id,
        to_unit_id=to_id,
        to_unit_name=to_name,
        next_step=STEPS[kind][0],
        reason=reason.strip(),
        started_by=ctx.user.account_id,
        started_at=now,
        expires_at=now + ctx.settings.transfer_expiry,
        steps=[],
    )
    add_step(t, ctx.actor, Step.START, "start", reason, now)
    ctx.session.add(t)
    ctx.session.flush()
    from_path = ctx.session.get(Unit, from_id).path
    trail.record(ctx, f"{kind}.start", "transfer", t.id, from_path, reason=reason, teacher=teacher.teacher_number)
    return t


def get_transfer(ctx: ProvinceContext, transfer_id: int, *, lock: bool = False) -> Transfer:
    """The request, if one of its ends lies in the actor's subtree (a teacher: their own); otherwise not found.
    ``lock``: read for a decision, ``FOR UPDATE`` (the request's row before its file's, always in that order)."""
    t = get_for_update(ctx.session, Transfer, transfer_id) if lock else ctx.session.get(Transfer, transfer_id)
    if t is not None and ctx.user.role == Role.TEACHER:
        if t.teacher_id is None or t.teacher_id != ctx.user.teacher_id:
            raise NotFoundError(f"transfer {transfer_id} not found")
        return t
    if t is None or not any(ctx.user.contains(ctx.session.get(Unit, u)) for u in (t.from_unit_id, t.to_unit_id) if u):
        raise NotFoundError(f"transfer {transfer_id} not found")
    return t


def decide(ctx: ProvinceContext, transfer_id: int, decision: str, reason: str | None = None) -> Transfer:
    """Approve or reject (with a reason) the step the request waits for, by an infoadmin of that step's
    unit. On a cross-province request the decision is also queued for the national node."""
    actor, now = ctx.user, ctx.now
    t = get_transfer(ctx, transfer_id, lock=True)
    if t.status != TransferStatus.OPEN:
        raise ConflictError(f"the request is {t.status}")
    unit = _unit_for(ctx, t, t.next_step)
    if unit is None:
        raise ConflictError(
            f"the request waits for {t.next_step} in province {t.remote_province}"
            if t.next_step != Step.COMPLETION
            else "every step is decided; the request waits for the national node to complete it",
            details={"next_step": t.next_step},
        )
    if t.expires_at <= now:
        if sent(t):
            raise ConflictError("the request has expired; the national node closes it and tells both provinces")
        _expire(t, now)
        raise ConflictError("the request has expired")
    try:
        authorize(ctx, Operation.TRANSFER_DECIDE, unit, hidden=False)
    except PermissionDeniedError:
        raise PermissionDeniedError(
            f"this request waits for {unit.name} ({t.next_step})",
            details={"next_step": t.next_step, "unit": unit.code, "operation": str(Operation.TRANSFER_DECIDE)},
        ) from None
    if decision not in tuple(Decision):
        raise invalid("transfer", "decision", "只能是 approve 或 reject", "approve or reject", decision)
    if decision == Decision.REJECT and not (reason or "").strip():
        raise invalid("transfer", "reason", "拒绝须说明原因", "a rejection needs a reason")
    step = t.next_step
    add_step(t, actor, step, decision, reason, now)
    if decision == Decision.REJECT:
        close(t, TransferStatus.REJECTED, now)
    if is_cross(t):
        cross_province.after_local_decision(ctx, t, step, decision, reason)
    elif decision == Decision.APPROVE:
        advance(t, step)
        if t.next_step == Step.COMPLETION:
            _complete(ctx, t)
    trail.record(ctx, f"{t.kind}.{decision}", "transfer", t.id, unit.path, reason=reason)
    return t


def withdraw(ctx: ProvinceContext, transfer_id: int, reason: str) -> Transfer:
    """The starting unit withdraws its request before the last step. A cross-province request that has left
    the node is withdrawn through the national node: it closes when the national node confirms."""
    actor, now = ctx.user, ctx.now
    t = get_transfer(ctx, transfer_id, lock=True)
    if t.status != TransferStatus.OPEN:
        raise ConflictError(f"the request is {t.status}")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "撤回须说明原因", "a withdrawal needs a reason")
    starter_unit = starter_unit_id(t)
    _may_withdraw(ctx, t, starter_unit)
    if t.next_step in (STEPS[t.kind][-1], Step.COMPLETION) and len(STEPS[t.kind]) > 1:
        raise ConflictError("the request waits for its last step and can no longer be withdrawn")
    if sent(t):
        if any(x["decision"] == "withdraw_requested" for x in t.steps):
            raise ConflictError("the withdrawal was already sent to the national node")
        add_step(t, actor, Step.WITHDRAW, "withdraw_requested", reason, now)
        cross_province.queue_withdrawal(ctx, t, reason.strip())
    else:
        add_step(t, actor, Step.WITHDRAW, "withdraw", reason, now)
        close(t, TransferStatus.WITHDRAWN, now)
    starter_path = ctx.session.get(Unit, starter_unit).path
    trail.record(ctx, f"{t.kind}.withdraw", "transfer", t.id, starter_path, reason=reason)
    return t


def _may_withdraw(ctx: ProvinceContext, t: Transfer, starter_unit: int | None) -> None:
    """Only the role that started the request, at the unit that started it, or that unit's supervising bureau
    (the unit directly above: :data:`Operation.TRANSFER_WITHDRAW`'s scope) may withdraw it."""
    refused = PermissionDeniedError(
        "only the role and unit that started the request, or its bureau, may withdraw it",
        details={"operation": str(Operation.TRANSFER_WITHDRAW)},
    )
    authorize(ctx, Operation.TRANSFER_WITHDRAW)
    if starter_unit is None or (is_cross(t) and not started_here(t)):
        raise refused
    unit = ctx.session.get(Unit, starter_unit)
    try:
        authorize(ctx, Operation.TRANSFER_WITHDRAW, unit, hidden=False)
    except PermissionDeniedError:
        raise refused from None
    starter = ctx.session.get(Account, t.started_by) if t.started_by else None
    if unit.id == ctx.user.unit_id and (starter is None or starter.role != ctx.user.role):
        raise refused
    if unit.id != ctx.user.unit_id and unit.supervisor_id not in (None, ctx.user.unit_id):
        raise refused


def _expire(t: Transfer, now: dt.datetime) -> None:
    add_step(t, None, t.next_step or "", "expire", "request expired", now)
    close(t, TransferStatus.EXPIRED, now)


def expire_due(ctx: ProvinceContext) -> int:
    """Expire open requests past their deadline (run by the scheduler or the CLI). A cross-province request
    that has left the node is left to the national node, which tells both provinces."""
    stmt = (
        select(Transfer)
        .where(Transfer.status == TransferStatus.OPEN, Transfer.expires_at <= ctx.now)
        # a request being decided right now is left for the next run (its decision may complete it)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    due = [t for t in ctx.session.scalars(stmt) if not sent(t)]
    for t in due:
        _expire(t, ctx.now)
    return len(due)


def _complete(ctx: ProvinceContext, t: Transfer) -> None:
    """Every step approved inside the province: the file's new effective version, then the request closes."""
    session = ctx.session
    teacher = get_for_update(session, Teacher, t.teacher_id)
    data = copy.deepcopy(teacher.data)
    month = work_history.month_of(ctx.now)
    from_school = session.get(Unit, t.from_unit_id)
    if t.kind in (TransferKind.ROTATION, TransferKind.ROTATION_TRANSFER):
        work_history.rotation_record(
            data,
            rotation_type=t.rotation_type,
            with_transfer=t.kind == TransferKind.ROTATION_TRANSFER,
            start_month=t.start_month,
            end_month=t.end_month,
            from_name=from_school.name,
            to_name=t.to_unit_name,
        )
        if t.kind == TransferKind.ROTATION:
            work_history.set_person_status(data, PersonStatus.ON_ROTATION)
    if t.kind in (TransferKind.TRANSFER, TransferKind.ROTATION_TRANSFER):
        to_school = session.get(Unit, t.to_unit_id)
        work_history.close_work(data, from_school.name, month)
        work_history.open_work(data, to_school.name, month)
        teacher.unit_id = to_school.id
    effective.write_effective(
        ctx,
        teacher,
        data,
        action=HistoryAction(t.kind),
        reason=t.reason,
        op=RecordOp.STATUS_CHANGE if t.kind == TransferKind.ROTATION else RecordOp.UPSERT,
    )
    close(t, TransferStatus.COMPLETED, ctx.now)


def end_rotation(ctx: ProvinceContext, transfer_id: int) -> Transfer:
    """The teacher returns (回原单位): 人员状态 back to 在本单位任职, the rotation record gets its end month."""
    actor = ctx.user
    t = get_transfer(ctx, transfer_id, lock=True)
    authorize(
        ctx, Operation.ROTATION_END, ctx.session.get(Unit, t.from_unit_id) if t.from_unit_id else None, hidden=False
    )
    if t.kind != TransferKind.ROTATION or t.status != TransferStatus.COMPLETED:
        raise ConflictError("only a completed rotation is ended, by the sending school")
    teacher = get_for_update(ctx.session, Teacher, t.teacher_id)
    if work_history.person_status(teacher.data) != PersonStatus.ON_ROTATION:
        raise ConflictError("the teacher is not on rotation")
    data = copy.deepcopy(teacher.data)
    work_history.set_person_status(data, PersonStatus.IN_POST)
    work_history.end_rotation_record(data, t.start_month, work_history.month_of(ctx.now))
    effective.write_effective(ctx, teacher, data, action=HistoryAction.ROTATION_END, op=RecordOp.STATUS_CHANGE)
    add_step(t, actor, Step.RETURN, "return", None, ctx.now)
    trail.record(ctx, "rotation.end", "transfer", t.id, ctx.session.get(Unit, t.from_unit_id).path)
    return t


def pending(ctx: ProvinceContext) -> list[Transfer]:
    """What waits for the actor's unit (待办); steps decided in another province are not listed."""
    authorize(ctx, Operation.TRANSFER_DECIDE)
    out = []
    stmt = select(Transfer).where(Transfer.status == TransferStatus.OPEN).order_by(Transfer.id)
    for t in ctx.session.scalars(stmt):
        unit = _unit_for(ctx, t, t.next_step)
        if unit is not None and unit.id == ctx.user.unit_id:
            out.append(t)
    return out


def for_teacher(ctx: ProvinceContext, teacher_id: int) -> list[Transfer]:
    teacher = get_teacher(ctx, teacher_id, Operation.TRANSFERS_READ)
    stmt = select(Transfer).where(Transfer.teacher_id == teacher.id).order_by(Transfer.id)
    return list(ctx.session.scalars(stmt))


def in_scope(ctx: ProvinceContext, status: str | None = None) -> list[Transfer]:
    """Transfers and rotations touching the actor's subtree (either end); a teacher: their own."""
    rule = authorize(ctx, Operation.TRANSFERS_READ)
    if rule.scope == Scope.SELF:
        stmt = select(Transfer).where(Transfer.teacher_id == ctx.user.teacher_id)
        if status:
            stmt = stmt.where(Transfer.status == status)
        return list(ctx.session.scalars(stmt.order_by(Transfer.id)))
    units = select(Unit.id).where(Unit.path.startswith(ctx.user.unit_path, autoescape=True))
    stmt = select(Transfer).where(or_(Transfer.from_unit_id.in_(units), Transfer.to_unit_id.in_(units)))
    if status:
        stmt = stmt.where(Transfer.status == status)
    return list(ctx.session.scalars(stmt.order_by(Transfer.id)))
