"""Transfers (调动) and exchange rotation (交流轮岗) inside a province (暂行办法 arts. 23–24, DESIGN §7).

Steps (each decided by an information administrator of the unit named; any step may reject with a reason;
the starter may withdraw before the last step; open requests expire after ``EXPIRY``):

==================  =======================================================================================
kind                steps after the start
==================  =======================================================================================
transfer            started by the receiving school → receiving bureau → sending school → sending bureau
                    → the file moves to the receiving school with its whole history
rotation            started by the sending school → sending bureau → 交流轮岗 record added, 人员状态
                    "暂未在本单位任职-交流轮岗" (205); the teacher stays with the sending school
rotation_transfer   started by the sending school → sending bureau → receiving school → receiving bureau
                    → 交流轮岗 record, then the file moves as in a transfer
==================  =======================================================================================

When a file moves, 工作经历 gets the closing entry (the old school, ending this month) and the opening
entry (the new school); the change is recorded in the file's history and, where core indicators changed,
in the outbox. Every step is in the audit trail and visible to every party in its own scope.

Across provinces (跨省) the same steps are split between the two nodes and the rest travels through the
national node: :mod:`provincial_node.services.crossprovince`. A request expires after
``TMIS_TRANSFER_EXPIRY_DAYS`` (default 60); once a cross-province request has left the node, only the
national node expires it.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.config import ProvincialConfig
from common.db import utcnow
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, invalid
from common.identity import IdentityError, validate_identity
from provincial_node.models import Teacher, Transfer, Unit
from provincial_node.services import audit, crossprovince, files, outbox
from provincial_node.services.access import Actor, unit_in_scope

EXPIRY = dt.timedelta(days=60)
ROTATION_STATUS = "205"  # 暂未在本单位任职-交流轮岗
IN_POST = "100"
STEPS = {
    "transfer": ["receiving_bureau", "sending_school", "sending_bureau"],
    "rotation": ["sending_bureau"],
    "rotation_transfer": ["sending_bureau", "receiving_school", "receiving_bureau"],
}


def _unit_for(session: Session, transfer: Transfer, step: str) -> Unit | None:
    """The unit deciding ``step`` in this node (None for a step decided in another province)."""
    if step not in STEPS[transfer.kind] or not crossprovince.local_step(transfer, step):
        return None
    school = session.get(Unit, transfer.to_unit_id if step.startswith("receiving") else transfer.from_unit_id)
    if step.endswith("bureau"):
        return session.get(Unit, school.supervisor_id)
    return school


def month_of(now: dt.datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def _open_for(session: Session, teacher_id: int) -> Transfer | None:
    return session.scalar(select(Transfer).where(Transfer.teacher_id == teacher_id, Transfer.status == "open"))


def add_step(
    transfer: Transfer,
    actor: Actor | None,
    step: str,
    decision: str,
    reason: str | None,
    now: dt.datetime,
    by: str | None = None,
) -> None:
    """Append a decision to the request's steps: an account's, or ``by`` (another province, the national
    node) or the system's."""
    transfer.steps = [
        *transfer.steps,
        {
            "step": step,
            "decision": decision,
            "reason": reason,
            "account_id": actor.account_id if actor else None,
            "username": actor.username if actor else (by or "system"),
            "at": now.isoformat(),
        },
    ]


def start_transfer(
    session: Session,
    actor: Actor,
    teacher_number: str,
    doc_type: str,
    doc_number: str,
    to_school_id: int,
    reason: str,
    now: dt.datetime | None = None,
    *,
    province: str,
    from_province: str | None = None,
    expiry: dt.timedelta | None = None,
) -> Transfer:
    """The receiving school asks for a teacher, identified by teacher number and identity document. A teacher
    of another province (``from_province``; by default the teacher number's prefix when the number is not
    held here, or the province the teacher was transferred to) is requested through the national node."""
    now = now or utcnow()
    actor.require("infoadmin")
    school = unit_in_scope(session, actor, to_school_id)
    if school.level != "school" or actor.unit_id != school.id:
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
        elif held.status == "transferred_out":  # the teacher left: ask the province they went to
            from_province = crossprovince.where_it_went(session, teacher_number) or teacher_number[:2]
        else:
            from_province = province
    if from_province != province:
        return crossprovince.start_transfer(
            session,
            actor,
            province,
            from_province,
            teacher_number,
            doc_type,
            number,
            school,
            reason,
            now,
            expiry or EXPIRY,
        )
    teacher = held
    if teacher is None or (teacher.doc_type, teacher.doc_number) != (doc_type, number):
        raise NotFoundError(
            "no teacher in this province with that teacher number and identity document "
            "(a teacher of another province is requested through the national node)"
        )
    if not teacher.ever_effective or teacher.status == "transferred_out" or teacher.unit_id == school.id:
        raise ConflictError("only an effective file of another school can be transferred here")
    return _create(session, actor, "transfer", teacher, teacher.unit_id, school.id, None, reason, now, expiry)


def start_rotation(
    session: Session,
    actor: Actor,
    catalogue: Catalogue,
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
    province: str | None = None,
    expiry: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> Transfer:
    """The sending school starts an exchange rotation (with or without a change of personnel relationship).

    With a change of personnel relationship to a school of another province, name ``to_province``,
    ``to_school_code`` (its 学校标识码) and ``to_unit_name``; the request goes through the national node."""
    now = now or utcnow()
    actor.require("infoadmin")
    teacher = files.get_teacher(session, actor, teacher_id)
    if actor.unit_id != teacher.unit_id:
        raise PermissionDeniedError("a rotation is started by the teacher's school")
    if not teacher.ever_effective:
        raise ConflictError("only an effective file can rotate")
    if rotation_type not in catalogue.table("JLLGLX") or rotation_type == "0":
        raise invalid("transfer", "rotation_type", "交流轮岗类型无效", "unknown 交流轮岗类型", rotation_type)
    if with_transfer and to_province and to_province != province:
        if not (to_school_code or "").strip() or not (to_unit_name or "").strip():
            raise invalid(
                "transfer",
                "to_school_code",
                "跨省交流轮岗须填写接收学校标识码和名称",
                "a cross-province rotation names the receiving school's code and name",
                to_school_code,
            )
        t = _create(
            session,
            actor,
            "rotation_transfer",
            teacher,
            teacher.unit_id,
            None,
            to_unit_name.strip(),
            reason,
            now,
            expiry,
        )
        t.rotation_type, t.start_month, t.end_month = rotation_type, start_month, end_month
        crossprovince.mark_cross(t, "from", to_province, teacher, to_school_code.strip(), to_unit_name.strip())
        return t
    to_school = unit_in_scope(session, _province_actor(session, actor), to_school_id) if to_school_id else None
    if with_transfer and (to_school is None or to_school.level != "school"):
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
    kind = "rotation_transfer" if with_transfer else "rotation"
    t = _create(
        session,
        actor,
        kind,
        teacher,
        teacher.unit_id,
        to_school.id if to_school else None,
        to_unit_name or (to_school.name if to_school else None),
        reason,
        now,
        expiry,
    )
    t.rotation_type, t.start_month, t.end_month = rotation_type, start_month, end_month
    return t


def _province_actor(session: Session, actor: Actor) -> Actor:
    """The rotation target may be anywhere in the province: resolve it in the province's scope."""
    root = session.get(Unit, int(actor.unit_path.strip("/").split("/")[0]))
    return Actor(actor.account_id, actor.username, actor.role, root.id, root.path, root.level, None)


def _create(
    session: Session,
    actor: Actor,
    kind: str,
    teacher: Teacher,
    from_id: int,
    to_id: int | None,
    to_name: str | None,
    reason: str,
    now: dt.datetime,
    expiry: dt.timedelta | None = None,
) -> Transfer:
    if teacher.status == "transferred_out":
        raise ConflictError("the teacher was transferred to another province; the file is read-only here")
    if _open_for(session, teacher.id):
        raise ConflictError("this teacher already has an open transfer or rotation")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "须说明原因", "a reason is required")
    t = Transfer(
        kind=kind,
        teacher_id=teacher.id,
        from_unit_id=from_id,
        to_unit_id=to_id,
        to_unit_name=to_name,
        next_step=STEPS[kind][0],
        reason=reason.strip(),
        started_by=actor.account_id,
        started_at=now,
        expires_at=now + (expiry or EXPIRY),
        steps=[],
    )
    add_step(t, actor, "start", "start", reason, now)
    session.add(t)
    session.flush()
    audit.record(
        session,
        actor,
        f"{kind}.start",
        "transfer",
        t.id,
        session.get(Unit, from_id).path,
        reason=reason,
        teacher=teacher.teacher_number,
    )
    return t


def expiry_of(config: ProvincialConfig) -> dt.timedelta:
    """The request lifetime configured for the node (``TMIS_TRANSFER_EXPIRY_DAYS``)."""
    return dt.timedelta(days=config.transfer_expiry_days)


def _get(session: Session, actor: Actor, transfer_id: int) -> Transfer:
    t = session.get(Transfer, transfer_id)
    if t is None or not any(actor.contains(session.get(Unit, u)) for u in (t.from_unit_id, t.to_unit_id) if u):
        raise NotFoundError(f"transfer {transfer_id} not found")
    return t


def decide(
    session: Session,
    actor: Actor,
    catalogue: Catalogue,
    province: str,
    transfer_id: int,
    decision: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> Transfer:
    """Approve or reject (with a reason) the step the request waits for, by an infoadmin of that step's
    unit. On a cross-province request the decision is also queued for the national node."""
    now = now or utcnow()
    t = _get(session, actor, transfer_id)
    if t.status != "open":
        raise ConflictError(f"the request is {t.status}")
    unit = _unit_for(session, t, t.next_step)
    if unit is None:
        raise ConflictError(
            f"the request waits for {t.next_step} in province {t.remote_province}"
            if t.next_step != crossprovince.COMPLETION
            else "every step is decided; the request waits for the national node to complete it",
            details={"next_step": t.next_step},
        )
    if t.expires_at <= now:
        if crossprovince.sent(t):
            raise ConflictError("the request has expired; the national node closes it and tells both provinces")
        _expire(session, t, now)
        raise ConflictError("the request has expired")
    actor.require("infoadmin")
    if actor.unit_id != unit.id:
        raise PermissionDeniedError(
            f"this request waits for {unit.name} ({t.next_step})", details={"next_step": t.next_step, "unit": unit.code}
        )
    if decision not in ("approve", "reject"):
        raise invalid("transfer", "decision", "只能是 approve 或 reject", "approve or reject", decision)
    if decision == "reject" and not (reason or "").strip():
        raise invalid("transfer", "reason", "拒绝须说明原因", "a rejection needs a reason")
    step = t.next_step
    add_step(t, actor, step, decision, reason, now)
    if decision == "reject":
        t.status, t.finished_at, t.next_step = "rejected", now, None
    if crossprovince.is_cross(t):
        crossprovince.after_local_decision(session, catalogue, province, t, step, decision, reason, now)
    elif decision == "approve":
        steps = STEPS[t.kind]
        i = steps.index(step)
        if i + 1 < len(steps):
            t.next_step = steps[i + 1]
        else:
            _complete(session, actor, catalogue, province, t, now)
    audit.record(session, actor, f"{t.kind}.{decision}", "transfer", t.id, unit.path, reason=reason)
    return t


def withdraw(session: Session, actor: Actor, transfer_id: int, reason: str, now: dt.datetime | None = None) -> Transfer:
    """The starting unit withdraws its request before the last step. A cross-province request that has left
    the node is withdrawn through the national node: it closes when the national node confirms."""
    now = now or utcnow()
    t = _get(session, actor, transfer_id)
    if t.status != "open":
        raise ConflictError(f"the request is {t.status}")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "撤回须说明原因", "a withdrawal needs a reason")
    starter_unit = t.to_unit_id if t.kind == "transfer" else t.from_unit_id
    if actor.unit_id != starter_unit or (crossprovince.is_cross(t) and not crossprovince.started_here(t)):
        raise PermissionDeniedError("only the unit that started the request may withdraw it")
    if t.next_step in (STEPS[t.kind][-1], crossprovince.COMPLETION) and len(STEPS[t.kind]) > 1:
        raise ConflictError("the request waits for its last step and can no longer be withdrawn")
    if crossprovince.sent(t):
        if any(x["decision"] == "withdraw_requested" for x in t.steps):
            raise ConflictError("the withdrawal was already sent to the national node")
        add_step(t, actor, "withdraw", "withdraw_requested", reason, now)
        crossprovince.queue_withdrawal(session, t, reason.strip(), now)
    else:
        add_step(t, actor, "withdraw", "withdraw", reason, now)
        t.status, t.finished_at, t.next_step = "withdrawn", now, None
    audit.record(
        session, actor, f"{t.kind}.withdraw", "transfer", t.id, session.get(Unit, starter_unit).path, reason=reason
    )
    return t


def _expire(session: Session, t: Transfer, now: dt.datetime) -> None:
    add_step(t, None, t.next_step or "", "expire", "request expired", now)
    t.status, t.finished_at, t.next_step = "expired", now, None


def expire_due(session: Session, now: dt.datetime | None = None) -> int:
    """Expire open requests past their deadline (run by the scheduler or the CLI). A cross-province request
    that has left the node is left to the national node, which tells both provinces."""
    now = now or utcnow()
    due = [
        t
        for t in session.scalars(select(Transfer).where(Transfer.status == "open", Transfer.expires_at <= now))
        if not crossprovince.sent(t)
    ]
    for t in due:
        _expire(session, t, now)
    return len(due)


def close_work(data: dict[str, Any], from_name: str, month: str) -> None:
    """工作经历: end the entry of the school the teacher leaves (or add it, from 进本校年月)."""
    rows = data.setdefault("GZJL", [])
    for row in rows:
        if row.get("RZDWMC") == from_name and not row.get("RZJSNY"):
            row["RZJSNY"] = month
    if not any(r.get("RZDWMC") == from_name for r in rows):
        start = data.get("JBXX", {}).get("JBXNY", month)
        rows.append({"RZDWMC": from_name, "RZKSNY": start, "RZJSNY": month, "DWXZLBM": "2"})


def open_work(data: dict[str, Any], to_name: str, month: str) -> None:
    """工作经历: the entry of the new school; 进本校年月 is this month."""
    data.setdefault("GZJL", []).append({"RZDWMC": to_name, "RZKSNY": month, "DWXZLBM": "2"})
    data.setdefault("JBXX", {})["JBXNY"] = month


def rotation_record(data: dict[str, Any], t: Transfer, from_name: str) -> None:
    """交流轮岗: the rotation record of a completed rotation."""
    data.setdefault("JLLG", []).append(
        {
            k: v
            for k, v in {
                "JLLGLXM": t.rotation_type,
                "SFDDRSGX": "1" if t.kind == "rotation_transfer" else "0",
                "KSNY": t.start_month,
                "JSNY": t.end_month,
                "YDWMC": from_name,
                "JLLGDWMC": t.to_unit_name,
            }.items()
            if v
        }
    )


def save_moved(
    session: Session,
    actor: Actor | None,
    catalogue: Catalogue,
    province: str,
    teacher: Teacher,
    data: dict[str, Any],
    action: str,
    reason: str | None,
    op: str | None,
    to_province: str | None = None,
) -> None:
    """Make ``data`` the effective file (history, and the outbox when the core view changed or ``op`` says)."""
    old_core = outbox.core_view(catalogue, teacher.data)[0]
    changes = files.diff(teacher.data, data)
    teacher.data = data
    teacher.draft = (
        copy.deepcopy(data)
        if teacher.status in ("effective", "transferred_out")
        else {**teacher.draft, **{g: copy.deepcopy(data[g]) for g in ("JBXX", "GZJL", "JLLG") if g in data}}
    )
    teacher.file_version += 1
    files.record_history(session, teacher, actor, action, status_from=teacher.status, reason=reason, changes=changes)
    if op == "transfer_out":
        outbox.append(session, catalogue, teacher, province, op=op, to_province=to_province)
    elif op and outbox.core_view(catalogue, teacher.data)[0] != old_core:
        outbox.append(session, catalogue, teacher, province, op=op)


def _complete(
    session: Session, actor: Actor, catalogue: Catalogue, province: str, t: Transfer, now: dt.datetime
) -> None:
    teacher = session.get(Teacher, t.teacher_id)
    data = copy.deepcopy(teacher.data)
    month = month_of(now)
    from_school = session.get(Unit, t.from_unit_id)
    if t.kind in ("rotation", "rotation_transfer"):
        rotation_record(data, t, from_school.name)
        if t.kind == "rotation":
            data.setdefault("JBXX", {})["RYZTM"] = ROTATION_STATUS
    if t.kind in ("transfer", "rotation_transfer"):
        to_school = session.get(Unit, t.to_unit_id)
        close_work(data, from_school.name, month)
        open_work(data, to_school.name, month)
        teacher.unit_id = to_school.id
    save_moved(
        session,
        actor,
        catalogue,
        province,
        teacher,
        data,
        t.kind,
        t.reason,
        "status_change" if t.kind == "rotation" else "upsert",
    )
    t.status, t.finished_at, t.next_step = "completed", now, None


def end_rotation(
    session: Session,
    actor: Actor,
    catalogue: Catalogue,
    province: str,
    transfer_id: int,
    now: dt.datetime | None = None,
) -> Transfer:
    """The teacher returns (回原单位): 人员状态 back to 在本单位任职, the rotation record gets its end month."""
    now = now or utcnow()
    t = _get(session, actor, transfer_id)
    actor.require("infoadmin")
    if t.kind != "rotation" or t.status != "completed" or actor.unit_id != t.from_unit_id:
        raise ConflictError("only a completed rotation is ended, by the sending school")
    teacher = session.get(Teacher, t.teacher_id)
    if teacher.data.get("JBXX", {}).get("RYZTM") != ROTATION_STATUS:
        raise ConflictError("the teacher is not on rotation")
    data = copy.deepcopy(teacher.data)
    data["JBXX"]["RYZTM"] = IN_POST
    for row in reversed(data.get("JLLG", [])):
        if row.get("KSNY") == t.start_month and not row.get("JSNY"):
            row["JSNY"] = month_of(now)
            break
    changes = files.diff(teacher.data, data)
    teacher.data = data
    teacher.draft = copy.deepcopy(data) if teacher.status == "effective" else teacher.draft
    teacher.file_version += 1
    files.record_history(session, teacher, actor, "rotation_end", status_from=teacher.status, changes=changes)
    outbox.append(session, catalogue, teacher, province, op="status_change")
    add_step(t, actor, "return", "return", None, now)
    audit.record(session, actor, "rotation.end", "transfer", t.id, session.get(Unit, t.from_unit_id).path)
    return t


def pending(session: Session, actor: Actor) -> list[Transfer]:
    """What waits for the actor's unit (待办); steps decided in another province are not listed."""
    out = []
    for t in session.scalars(select(Transfer).where(Transfer.status == "open").order_by(Transfer.id)):
        unit = _unit_for(session, t, t.next_step)
        if unit is not None and unit.id == actor.unit_id:
            out.append(t)
    return out


def for_teacher(session: Session, actor: Actor, teacher_id: int) -> list[Transfer]:
    teacher = files.get_teacher(session, actor, teacher_id)
    return list(session.scalars(select(Transfer).where(Transfer.teacher_id == teacher.id).order_by(Transfer.id)))


def in_scope(session: Session, actor: Actor, status: str | None = None) -> list[Transfer]:
    units = select(Unit.id).where(Unit.path.startswith(actor.unit_path, autoescape=True))
    stmt = select(Transfer).where(or_(Transfer.from_unit_id.in_(units), Transfer.to_unit_id.in_(units)))
    if status:
        stmt = stmt.where(Transfer.status == status)
    return list(session.scalars(stmt.order_by(Transfer.id)))


def to_json(t: Transfer) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "teacher_id": t.teacher_id,
        "from_unit_id": t.from_unit_id,
        "to_unit_id": t.to_unit_id,
        "to_unit_name": t.to_unit_name,
        "status": t.status,
        "next_step": t.next_step,
        "rotation_type": t.rotation_type,
        "start_month": t.start_month,
        "end_month": t.end_month,
        "reason": t.reason,
        "started_at": t.started_at.isoformat(),
        "expires_at": t.expires_at.isoformat(),
        "steps": t.steps,
        "cross_province": crossprovince.to_json(t),
    }
