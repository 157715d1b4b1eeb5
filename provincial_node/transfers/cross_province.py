"""Cross-province transfers and rotations (跨省调动、跨省交流轮岗), the provincial side (DESIGN §7,
docs/protocol.md §15). The national node brokers; each province decides its own steps.

``transfer`` (B receives, A holds the teacher)::

    B school starts → B bureau approves ──request──▶ national ──▶ A: sending school → sending bureau
    ──answers + file──▶ national (ownership A → B) ──completion──▶ B creates the file, A marks 调出

``rotation_transfer`` (A's school sends the teacher with a change of personnel relationship)::

    A school starts → A bureau approves ──request──▶ national ──▶ B: receiving school → receiving bureau
    ──answers──▶ national ──▶ A sends the file automatically ──▶ completion as above

Everything a step must tell the other province is written to ``upward_message`` in the transaction of the
step (a transactional outbox, pushed by the next sync round): this module. What the national node routes back
is applied by :mod:`.inbound`.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from common.catalogue import Catalogue
from common.db import lock_name
from common.errors import ConflictError, invalid
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.sync import sealing
from provincial_node.sync.models import UpwardMessage
from provincial_node.teacher_files import duplicates, work_history
from provincial_node.teacher_files.models import Teacher, TeacherHistory
from provincial_node.teacher_files.status import Decision, FileStatus
from provincial_node.transfers.models import Transfer
from provincial_node.transfers.steps import (
    STARTER_LAST,
    Side,
    Step,
    TransferKind,
    TransferStatus,
    add_step,
    advance,
)
from sync_protocol import transfer as tr
from sync_protocol.canonical import canonical_bytes, format_time
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import check_province, check_teacher_number

MAX_FILE_BYTES = 900 * 1024


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
            Teacher.doc_index == doc_number,
            Teacher.status != FileStatus.TRANSFERRED_OUT,
        )
    )
    if here is not None:
        raise duplicates.duplicate_identity(ctx, here, school)
    lock_name(session, f"transfer request {teacher_number}")  # no row to lock yet: two clerks at once
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
        "identity": {  # sealed (sync.sealing): the national node seals it again to the other province
            "doc_type": t.doc_type,
            "doc_number": sealing.seal_value(
                ctx.session, t.doc_number, teacher_number=t.teacher_number, field=sealing.TRANSFER_FIELD
            ),
        },
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
        if decision == Decision.APPROVE:
            t.transfer_uid = f"{ctx.province}-{t.id}-{secrets.token_hex(4)}"
            advance(t, step)
            _queue(ctx, t, ctx.province, "transfer_request", _request_body(ctx, t))
        return
    queue_answer(ctx, t, step, decision, reason)
    if decision == Decision.APPROVE:
        advance(t, step)
        if t.next_step == Step.COMPLETION and t.role == Side.FROM:
            queue_file(ctx, t)


def queue_answer(ctx: ProvinceContext, t: Transfer, step: str, decision: str, reason: str | None) -> None:
    """This province's decision on one of its steps, for the other province."""
    body = {
        "transfer_id": t.transfer_uid,
        "step": step,
        "decision": decision,
        "reason": (reason or "").strip() or None,
        "answered_at": format_time(ctx.now),
    }
    _queue(ctx, t, ctx.province, "transfer_answer", body)


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


def queue_file(ctx: ProvinceContext, t: Transfer) -> None:
    """The file for the receiving province, once every step is decided (the holding province sends it)."""
    teacher = ctx.session.get(Teacher, t.teacher_id)
    file = sealing.seal_file(ctx.session, build_file(ctx, t, teacher), teacher.teacher_number)
    body = {
        "transfer_id": t.transfer_uid,
        "teacher_number": teacher.teacher_number,
        "file": file,
        "file_hash": tr.file_hash(file),
        "sent_at": format_time(ctx.now),
    }
    _queue(ctx, t, ctx.province, "transfer_file", body)
