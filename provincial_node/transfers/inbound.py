"""What the national node routes to this province about cross-province transfers, applied in the transaction
that stores the inbox message (:data:`INBOX_HANDLERS`, registered with the sync round by
:mod:`provincial_node.areas`), so a message is applied exactly once however often it is delivered and
whenever a node restarts; and what happens when the national node refuses a message this province sent
(:data:`REFUSAL_HANDLERS`).

The province that holds the teacher refuses a request it cannot honour (no such teacher here, another
identity document, not effective, already leaving) with an automatic rejection. On completion the receiving
province creates the file under the same teacher number and the sending province marks its own 调出 — both
through the one effective-write path.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Select, select

from common.catalogue.codes import PersonStatus
from common.db import get_for_update
from common.errors import ConflictError, NotFoundError
from provincial_node.accounts.access import province_unit
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, UnitLevel
from provincial_node.sync import sealing
from provincial_node.sync.models import UpwardMessage
from provincial_node.teacher_files import effective, work_history
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.teacher_files.status import Decision, FileStatus, HistoryAction
from provincial_node.transfers.cross_province import moved_data, queue_answer, queue_file
from provincial_node.transfers.models import Transfer
from provincial_node.transfers.steps import Side, Step, TransferStatus, add_step, advance, close
from sync_protocol import transfer as tr
from sync_protocol.canonical import parse_time
from sync_protocol.inbox import InboxMessage
from sync_protocol.records import RecordOp

INBOX_KINDS = ("transfer_request", "transfer_answer", "transfer_closed", "transfer_completion")


def _for_update(stmt: Select[Any]) -> Select[Any]:
    """``stmt`` reading its row ``FOR UPDATE`` and refreshing what the session held: the sync round changes
    requests and files that users may be deciding or editing at the same moment (common.db.get_for_update)."""
    return stmt.with_for_update().execution_options(populate_existing=True)


def _by_uid(ctx: ProvinceContext, uid: str) -> Transfer:
    t = ctx.session.scalar(_for_update(select(Transfer).where(Transfer.transfer_uid == uid)))
    if t is None:
        raise NotFoundError(f"no cross-province transfer {uid} in this province")
    return t


def process(ctx: ProvinceContext, msg: InboxMessage) -> None:
    """Apply one verified inbox message about a transfer (called in the transaction that stores it); the
    event is in the audit trail under the units of this province that the transfer touches."""
    b = msg.body
    t = _on_request(ctx, b) if msg.kind == "transfer_request" else _apply(ctx, msg)
    unit_id = t.from_unit_id if t.role == Side.FROM else t.to_unit_id
    unit = ctx.session.get(Unit, unit_id) if unit_id else province_unit(ctx.session)
    trail.record(
        ctx,
        f"{t.kind}.{msg.kind}",
        "transfer",
        t.id,
        unit.path,
        reason=b.get("reason"),
        transfer_id=t.transfer_uid,
        inbox_seq=msg.seq,
        from_province=t.remote_province if t.role == Side.TO else ctx.province,
    )


def _apply(ctx: ProvinceContext, msg: InboxMessage) -> Transfer:
    b, now = msg.body, ctx.now
    t = _by_uid(ctx, b["transfer_id"])
    if msg.kind == "transfer_answer":
        _on_answer(ctx, t, b)
    elif msg.kind == "transfer_closed":
        if t.status == TransferStatus.OPEN:
            close(t, TransferStatus(b["outcome"]), now)
        add_step(t, None, Step.NATIONAL, b["outcome"], b["reason"], now, by="national node")
    elif msg.kind == "transfer_completion":
        if t.status == TransferStatus.COMPLETED:
            return t
        if t.role == Side.TO:
            _receive_file(ctx, t, b)
        else:
            _hand_over(ctx, t)
        add_step(t, None, Step.COMPLETION, TransferStatus.COMPLETED, None, now, by="national node")
        close(t, TransferStatus.COMPLETED, now)
    return t


def _refuse(ctx: ProvinceContext, t: Transfer, step: str, reason: str) -> None:
    """An automatic rejection of a request this province cannot honour."""
    add_step(t, None, step, Decision.REJECT, reason, ctx.now)
    close(t, TransferStatus.REJECTED, ctx.now)
    ctx.session.flush()
    queue_answer(ctx, t, step, Decision.REJECT, reason)


def _on_request(ctx: ProvinceContext, b: dict[str, Any]) -> Transfer:
    session, now, province = ctx.session, ctx.now, ctx.province
    known = session.scalar(select(Transfer).where(Transfer.transfer_uid == b["transfer_id"]))
    if known is not None:
        return known  # a request is routed once; defensive
    doc_number = sealing.open_value(  # sealed to this province by the national node; stored under the data key
        session, b["identity"]["doc_number"], teacher_number=b["teacher_number"], field=sealing.TRANSFER_FIELD
    )
    side = Side.FROM if b["from_province"] == province else Side.TO
    remote = b["to_province"] if side == Side.FROM else b["from_province"]
    other = b["receiving_school"] if side == Side.FROM else b["from_school"]
    t = Transfer(
        kind=b["kind"],
        teacher_id=None,
        from_unit_id=None,
        to_unit_id=None,
        to_unit_name=b["receiving_school"]["name"],
        reason=b["reason"],
        started_by=None,
        started_at=parse_time(b["requested_at"], "requested_at"),
        expires_at=parse_time(b["expires_at"], "expires_at"),
        steps=[],
        transfer_uid=b["transfer_id"],
        role=side,
        remote_province=remote,
        teacher_number=b["teacher_number"],
        doc_type=b["identity"]["doc_type"],
        doc_number=doc_number,
        remote_school_code=other["code"],
        remote_school_name=other["name"],
        next_step=tr.FLOWS[b["kind"]]["steps"][0],
    )
    if b["rotation"]:
        r = b["rotation"]
        t.rotation_type, t.start_month, t.end_month = r["type"], r["start_month"], r["end_month"]
    add_step(t, None, Step.START, "start", b["reason"], now, by=f"province {remote}")
    session.add(t)
    session.flush()
    first = t.next_step
    if side == Side.FROM:
        teacher = session.scalar(_for_update(select(Teacher).where(Teacher.teacher_number == b["teacher_number"])))
        if teacher is None or teacher.status == FileStatus.TRANSFERRED_OUT:
            _refuse(ctx, t, first, f"teacher {b['teacher_number']} is not held by province {province}")
            return t
        t.teacher_id, t.from_unit_id = teacher.id, teacher.unit_id
        if (teacher.doc_type, teacher.doc_number) != (b["identity"]["doc_type"], doc_number):
            _refuse(ctx, t, first, "the identity document does not match the teacher number")
        elif not teacher.ever_effective:
            _refuse(ctx, t, first, "the teacher's file is not effective")
        elif session.scalar(
            select(Transfer.id).where(
                Transfer.teacher_id == teacher.id, Transfer.status == TransferStatus.OPEN, Transfer.id != t.id
            )
        ):
            _refuse(ctx, t, first, "the teacher already has an open transfer or rotation")
        return t
    school = session.scalar(
        select(Unit).where(Unit.code == b["receiving_school"]["code"], Unit.level == UnitLevel.SCHOOL)
    )
    here = session.scalar(
        select(Teacher).where(
            Teacher.doc_type == t.doc_type,
            Teacher.doc_index == t.doc_number,
            Teacher.status != FileStatus.TRANSFERRED_OUT,
        )
    )
    if school is None:
        _refuse(ctx, t, first, f"no school {b['receiving_school']['code']} in province {province}")
    elif here is not None:
        _refuse(ctx, t, first, f"the person already has a file here (teacher {here.teacher_number})")
    else:
        t.to_unit_id, t.to_unit_name = school.id, school.name
    return t


def _on_answer(ctx: ProvinceContext, t: Transfer, b: dict[str, Any]) -> None:
    add_step(t, None, b["step"], b["decision"], b["reason"], ctx.now, by=f"province {t.remote_province}")
    if t.status != TransferStatus.OPEN:
        return
    if b["decision"] == Decision.REJECT:
        close(t, TransferStatus.REJECTED, ctx.now)
        return
    advance(t, b["step"])
    if t.next_step == Step.COMPLETION and t.role == Side.FROM:  # rotation: B approved last, A sends the file
        queue_file(ctx, t)


def _receive_file(ctx: ProvinceContext, t: Transfer, b: dict[str, Any]) -> None:
    """B: the file under the same teacher number, effective, with A's history and the opening 工作经历."""
    session = ctx.session
    file = b["file"]
    if file is None:
        raise ConflictError("the completion for the receiving province carries no file")
    file = sealing.open_file(session, file, b["teacher_number"])  # sealed to this province by the national node
    school = session.get(Unit, t.to_unit_id)
    data = copy.deepcopy(file["groups"])
    work_history.open_work(data, school.name, work_history.month_of(ctx.now))
    work_history.set_person_status(data, PersonStatus.IN_POST)
    teacher = session.scalar(_for_update(select(Teacher).where(Teacher.teacher_number == b["teacher_number"])))
    if teacher is None:
        teacher = Teacher(
            teacher_number=b["teacher_number"],
            unit_id=school.id,
            name=data.get("JBXX", {}).get("XM") or t.teacher_number,
            status=FileStatus.EFFECTIVE,
            ever_effective=True,
            data={},
            draft={},
            file_version=0,
        )
        teacher.set_identity(t.doc_type, t.doc_number)
        session.add(teacher)
        session.flush()
    elif teacher.status != FileStatus.TRANSFERRED_OUT:
        raise ConflictError(f"teacher {teacher.teacher_number} is already held here")
    for h in file["history"]:
        session.add(
            TeacherHistory(
                teacher_id=teacher.id,
                at=parse_time(h["at"], "history.at"),
                actor_id=None,
                action=str(h.get("action", ""))[:32],
                status_from=None,
                status_to=h.get("status_to"),
                reason=f"[province {t.remote_province}] {h.get('reason') or ''}".strip(),
                changes=h.get("changes") or [],
            )
        )
    teacher.unit_id = school.id
    t.teacher_id = teacher.id
    effective.write_effective(
        ctx,
        teacher,
        data,
        action=HistoryAction.TRANSFER_IN,
        reason=f"{t.kind} {t.transfer_uid} from province {t.remote_province}",
        status=FileStatus.EFFECTIVE,
    )


def _hand_over(ctx: ProvinceContext, t: Transfer) -> None:
    """A: the teacher is 调出 (人员状态 304); the file stays, read-only, with the closing 工作经历."""
    teacher = get_for_update(ctx.session, Teacher, t.teacher_id)
    data = moved_data(t, teacher.data, ctx.session.get(Unit, teacher.unit_id).name, ctx.now)
    work_history.set_person_status(data, PersonStatus.TRANSFERRED_OUT)
    effective.write_effective(
        ctx,
        teacher,
        data,
        action=HistoryAction.TRANSFER_OUT,
        reason=f"{t.kind} {t.transfer_uid} to province {t.remote_province}",
        status=FileStatus.TRANSFERRED_OUT,
        op=RecordOp.TRANSFER_OUT,
        to_province=t.remote_province,
    )


def refused(ctx: ProvinceContext, m: UpwardMessage, code: str, reason: str) -> None:
    """The national node refused a message. A refused request never existed there: the request is rejected
    here; any other refusal is noted on the transfer (the national node's own messages settle its state)."""
    t = ctx.session.get(Transfer, m.transfer_id)
    add_step(t, None, m.kind, "refused", f"national node: {reason} [{code}]", ctx.now, by="national node")
    if m.kind == "transfer_request" and t.status == TransferStatus.OPEN:
        close(t, TransferStatus.REJECTED, ctx.now)


INBOX_HANDLERS = dict.fromkeys(INBOX_KINDS, process)
REFUSAL_HANDLERS = dict.fromkeys(sorted(tr.UPWARD_KINDS), refused)
