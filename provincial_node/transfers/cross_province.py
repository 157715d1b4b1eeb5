"""Cross-province transfers and rotations (跨省调动、跨省交流轮岗), the provincial side (DESIGN §7,
docs/protocol.md §15). The national node brokers; each province decides its own steps.

``transfer`` (B receives, A holds the teacher)::

    B school starts → B bureau approves ──request──▶ national ──▶ A: sending school → sending bureau
    ──answers + file──▶ national (ownership A → B) ──completion──▶ B creates the file, A marks 调出

``rotation_transfer`` (A's school sends the teacher with a change of personnel relationship)::

    A school starts → A bureau approves ──request──▶ national ──▶ B: receiving school → receiving bureau
    ──answers──▶ national ──▶ A sends the file automatically ──▶ completion as above

Everything a step must tell the other province is written to ``upward_message`` in the transaction of the
step (a transactional outbox, pushed by the next sync round). Everything the national node routes back is
processed in the transaction that stores the inbox message (:data:`INBOX_HANDLERS`, registered with the
sync round by :mod:`provincial_node.areas`), so a message is applied exactly once however often it is
delivered and whenever a node restarts. The province that holds the teacher refuses a request it cannot
honour (no such teacher here, another identity document, not effective, already leaving) with an automatic
rejection.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from common.catalogue import Catalogue
from common.catalogue.codes import PersonStatus
from common.errors import ConflictError, NotFoundError, invalid
from provincial_node.accounts.access import province_unit
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, UnitLevel
from provincial_node.sync.models import UpwardMessage
from provincial_node.teacher_files import effective, work_history
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.teacher_files.status import FileStatus, HistoryAction
from provincial_node.transfers.models import Transfer
from provincial_node.transfers.steps import (
    STARTER_LAST,
    Side,
    Step,
    TransferKind,
    TransferStatus,
    add_step,
    advance,
    close,
)
from sync_protocol import transfer as tr
from sync_protocol.canonical import canonical_bytes, format_time, parse_time
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import check_province, check_teacher_number
from sync_protocol.inbox import InboxMessage
from sync_protocol.records import RecordOp

MAX_FILE_BYTES = 900 * 1024
INBOX_KINDS = ("transfer_request", "transfer_answer", "transfer_closed", "transfer_completion")


def mark_cross(
    t: Transfer, side: Side, remote: str, teacher: Teacher | None, school_code: str, school_name: str
) -> None:
    t.role, t.remote_province = side, remote
    t.remote_school_code, t.remote_school_name = school_code, school_name
    if teacher is not None:
        t.teacher_number, t.doc_type, t.doc_number = teacher.teacher_number, teacher.doc_type, teacher.doc_number


def where_it_went(ctx: ProvinceContext, teacher_number: str) -> str | None:
    """The province a teacher held here was last transferred to (to ask for them back), if any."""
    return ctx.session.scalar(
        select(Transfer.remote_province)
        .where(
            Transfer.teacher_number == teacher_number,
            Transfer.role == Side.FROM,
            Transfer.status == TransferStatus.COMPLETED,
        )
        .order_by(Transfer.id.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------------------------- starting


def start_transfer(
    ctx: ProvinceContext,
    from_province: str,
    teacher_number: str,
    doc_type: str,
    doc_number: str,
    school: Unit,
    reason: str,
) -> Transfer:
    """B's school asks for a teacher of province ``from_province`` (sent once B's bureau approves)."""
    session, now = ctx.session, ctx.now
    try:
        check_province(from_province, "from_province")
    except ProtocolError as e:
        raise invalid("transfer", "from_province", "调出省份代码无效", str(e), from_province) from None
    try:
        check_teacher_number(teacher_number)
    except ProtocolError as e:
        raise invalid("transfer", "teacher_number", "教师编号无效", str(e), teacher_number) from None
    here = session.scalar(
        select(Teacher).where(
            Teacher.doc_type == doc_type,
            Teacher.doc_number == doc_number,
            Teacher.status != FileStatus.TRANSFERRED_OUT,
        )
    )
    if here is not None:
        raise ConflictError(
            f"this person already has a file in this province (teacher {here.teacher_number})",
            details={"teacher_number": here.teacher_number},
        )
    if session.scalar(
        select(Transfer.id).where(Transfer.teacher_number == teacher_number, Transfer.status == TransferStatus.OPEN)
    ):
        raise ConflictError("this teacher already has an open transfer request here")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "须说明调动原因", "a reason is required")
    t = Transfer(
        kind=TransferKind.TRANSFER,
        teacher_id=None,
        from_unit_id=None,
        to_unit_id=school.id,
        to_unit_name=school.name,
        next_step=Step.RECEIVING_BUREAU,
        reason=reason.strip(),
        started_by=ctx.user.account_id,
        started_at=now,
        expires_at=now + ctx.settings.transfer_expiry,
        steps=[],
        role=Side.TO,
        remote_province=from_province,
        teacher_number=teacher_number,
        doc_type=doc_type,
        doc_number=doc_number,
    )
    add_step(t, ctx.actor, Step.START, "start", reason, now)
    session.add(t)
    session.flush()
    trail.record(
        ctx,
        "transfer.start",
        "transfer",
        t.id,
        school.path,
        reason=reason,
        teacher=teacher_number,
        from_province=from_province,
    )
    return t


def _queue(ctx: ProvinceContext, t: Transfer, province: str, kind: str, body: dict[str, Any]) -> UpwardMessage:
    try:
        payload = tr.transfer_payload(province=province, kind=kind, created_at=ctx.now, body=body)
    except ProtocolError as e:  # e.g. a reason longer than the protocol carries: nothing of the step is kept
        field = str(e.details.get("field") or "transfer")
        raise invalid("transfer", field, "跨省调动信息不符合协议要求", e.message, body.get(field)) from None
    msg = UpwardMessage(
        transfer_id=t.id,
        kind=kind,
        payload=payload,
        message_hash=hashlib.sha256(payload).hexdigest(),
        created_at=ctx.now,
    )
    ctx.session.add(msg)
    return msg


def _request_body(ctx: ProvinceContext, t: Transfer) -> dict[str, Any]:
    common = {
        "transfer_id": t.transfer_uid,
        "teacher_number": t.teacher_number,
        "identity": {"doc_type": t.doc_type, "doc_number": t.doc_number},
        "reason": t.reason,
        "requested_at": format_time(t.started_at),
        "expires_at": format_time(t.expires_at),
    }
    if t.kind == TransferKind.TRANSFER:
        school = ctx.session.get(Unit, t.to_unit_id)
        return {
            **common,
            "kind": "transfer",
            "from_province": t.remote_province,
            "to_province": ctx.province,
            "from_school": None,
            "receiving_school": {"code": school.code, "name": school.name},
            "rotation": None,
        }
    school = ctx.session.get(Unit, t.from_unit_id)
    return {
        **common,
        "kind": "rotation_transfer",
        "from_province": ctx.province,
        "to_province": t.remote_province,
        "from_school": {"code": school.code, "name": school.name},
        "receiving_school": {"code": t.remote_school_code, "name": t.remote_school_name},
        "rotation": {"type": t.rotation_type, "start_month": t.start_month, "end_month": t.end_month},
    }


def after_local_decision(ctx: ProvinceContext, t: Transfer, step: str, decision: str, reason: str | None) -> None:
    """What a decision on a cross-province request sends (``local.decide`` recorded the step)."""
    if step == STARTER_LAST[t.kind]:  # the starting province's last own step
        if decision == "approve":
            t.transfer_uid = f"{ctx.province}-{t.id}-{secrets.token_hex(4)}"
            advance(t, step)
            _queue(ctx, t, ctx.province, "transfer_request", _request_body(ctx, t))
        return
    body = {
        "transfer_id": t.transfer_uid,
        "step": step,
        "decision": decision,
        "reason": (reason or "").strip() or None,
        "answered_at": format_time(ctx.now),
    }
    _queue(ctx, t, ctx.province, "transfer_answer", body)
    if decision == "approve":
        advance(t, step)
        if t.next_step == Step.COMPLETION and t.role == Side.FROM:
            _queue_file(ctx, t)


def queue_withdrawal(ctx: ProvinceContext, t: Transfer, reason: str) -> None:
    """The starter's withdrawal (only the starter withdraws; its province prefixes the transfer id)."""
    body = {"transfer_id": t.transfer_uid, "reason": reason, "withdrawn_at": format_time(ctx.now)}
    _queue(ctx, t, t.transfer_uid.split("-", 1)[0], "transfer_withdrawal", body)


# ------------------------------------------------------------------------------------------------- files


def moved_data(t: Transfer, data: dict[str, Any], from_name: str, now: dt.datetime) -> dict[str, Any]:
    """The holding province's file after the move: 工作经历 closed (and the 交流轮岗 record of a rotation)."""
    out = copy.deepcopy(data)
    if t.kind == TransferKind.ROTATION_TRANSFER:
        work_history.rotation_record(
            out,
            rotation_type=t.rotation_type,
            with_transfer=True,
            start_month=t.start_month,
            end_month=t.end_month,
            from_name=from_name,
            to_name=t.to_unit_name,
        )
    work_history.close_work(out, from_name, work_history.month_of(now))
    return out


def _catalogue_only(catalogue: Catalogue, data: dict[str, Any]) -> dict[str, Any]:
    """Every record group, without the province's custom indicators (X_… fields) and unknown groups."""
    out: dict[str, Any] = {}
    for gcode, content in data.items():
        group = catalogue.groups.get(gcode)
        if group is None:
            continue
        codes = {f.code for f in group.fields if not f.custom}
        rows = content if isinstance(content, list) else [content]
        kept = [{k: v for k, v in row.items() if k in codes} for row in rows]
        out[gcode] = kept if isinstance(content, list) else kept[0]
    return out


def _history(ctx: ProvinceContext, teacher: Teacher, with_changes: bool) -> list[dict[str, Any]]:
    rows = ctx.session.scalars(
        select(TeacherHistory).where(TeacherHistory.teacher_id == teacher.id).order_by(TeacherHistory.id)
    )
    return [
        {
            "at": format_time(h.at),
            "action": h.action,
            "status_to": h.status_to,
            "reason": h.reason,
            **({"changes": h.changes} if with_changes else {}),
        }
        for h in rows
    ]


def build_file(ctx: ProvinceContext, t: Transfer, teacher: Teacher) -> dict[str, Any]:
    from_name = ctx.session.get(Unit, teacher.unit_id).name
    groups = _catalogue_only(ctx.base_catalogue, moved_data(t, teacher.data, from_name, ctx.now))
    file = {"groups": json_safe(groups), "history": json_safe(_history(ctx, teacher, True))}
    if len(canonical_bytes(file)) > MAX_FILE_BYTES:  # keep the message within the protocol's limit
        file["history"] = json_safe(_history(ctx, teacher, False))
    return file


def json_safe(value: Any) -> Any:
    """Only what canonical JSON carries (strings, integers, lists, objects, null)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    return str(value)


def _queue_file(ctx: ProvinceContext, t: Transfer) -> None:
    teacher = ctx.session.get(Teacher, t.teacher_id)
    file = build_file(ctx, t, teacher)
    body = {
        "transfer_id": t.transfer_uid,
        "teacher_number": teacher.teacher_number,
        "file": file,
        "file_hash": tr.file_hash(file),
        "sent_at": format_time(ctx.now),
    }
    _queue(ctx, t, ctx.province, "transfer_file", body)


# ------------------------------------------------------------------------------------------------- inbox


def _by_uid(ctx: ProvinceContext, uid: str) -> Transfer:
    t = ctx.session.scalar(select(Transfer).where(Transfer.transfer_uid == uid))
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
        add_step(t, None, Step.COMPLETION, "completed", None, now, by="national node")
        close(t, TransferStatus.COMPLETED, now)
    return t


def _refuse(ctx: ProvinceContext, t: Transfer, step: str, reason: str) -> None:
    """An automatic rejection of a request this province cannot honour."""
    add_step(t, None, step, "reject", reason, ctx.now)
    close(t, TransferStatus.REJECTED, ctx.now)
    body = {
        "transfer_id": t.transfer_uid,
        "step": step,
        "decision": "reject",
        "reason": reason,
        "answered_at": format_time(ctx.now),
    }
    ctx.session.flush()
    _queue(ctx, t, ctx.province, "transfer_answer", body)


def _on_request(ctx: ProvinceContext, b: dict[str, Any]) -> Transfer:
    session, now, province = ctx.session, ctx.now, ctx.province
    known = session.scalar(select(Transfer).where(Transfer.transfer_uid == b["transfer_id"]))
    if known is not None:
        return known  # a request is routed once; defensive
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
        doc_number=b["identity"]["doc_number"],
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
        teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == b["teacher_number"]))
        if teacher is None or teacher.status == FileStatus.TRANSFERRED_OUT:
            _refuse(ctx, t, first, f"teacher {b['teacher_number']} is not held by province {province}")
            return t
        t.teacher_id, t.from_unit_id = teacher.id, teacher.unit_id
        if (teacher.doc_type, teacher.doc_number) != (b["identity"]["doc_type"], b["identity"]["doc_number"]):
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
            Teacher.doc_number == t.doc_number,
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
    if b["decision"] == "reject":
        close(t, TransferStatus.REJECTED, ctx.now)
        return
    advance(t, b["step"])
    if t.next_step == Step.COMPLETION and t.role == Side.FROM:  # rotation: B approved last, A sends the file
        _queue_file(ctx, t)


def _receive_file(ctx: ProvinceContext, t: Transfer, b: dict[str, Any]) -> None:
    """B: the file under the same teacher number, effective, with A's history and the opening 工作经历."""
    session = ctx.session
    file = b["file"]
    if file is None:
        raise ConflictError("the completion for the receiving province carries no file")
    school = session.get(Unit, t.to_unit_id)
    data = copy.deepcopy(file["groups"])
    work_history.open_work(data, school.name, work_history.month_of(ctx.now))
    work_history.set_person_status(data, PersonStatus.IN_POST)
    teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == b["teacher_number"]))
    if teacher is None:
        teacher = Teacher(
            teacher_number=b["teacher_number"],
            unit_id=school.id,
            doc_type=t.doc_type,
            doc_number=t.doc_number,
            name=data.get("JBXX", {}).get("XM") or t.teacher_number,
            status=FileStatus.EFFECTIVE,
            ever_effective=True,
            data={},
            draft={},
            file_version=0,
        )
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
    teacher = ctx.session.get(Teacher, t.teacher_id)
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


# ------------------------------------------------------------------------------------- refused messages


def refused(ctx: ProvinceContext, m: UpwardMessage, code: str, reason: str) -> None:
    """The national node refused a message. A refused request never existed there: the request is rejected
    here; any other refusal is noted on the transfer (the national node's own messages settle its state)."""
    t = ctx.session.get(Transfer, m.transfer_id)
    add_step(t, None, m.kind, "refused", f"national node: {reason} [{code}]", ctx.now, by="national node")
    if m.kind == "transfer_request" and t.status == TransferStatus.OPEN:
        close(t, TransferStatus.REJECTED, ctx.now)


INBOX_HANDLERS = dict.fromkeys(INBOX_KINDS, process)
REFUSAL_HANDLERS = dict.fromkeys(sorted(tr.UPWARD_KINDS), refused)
