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
processed in the transaction that stores the inbox message, so a message is applied exactly once however
often it is delivered and whenever a node restarts. The province that holds the teacher refuses a request
it cannot honour (no such teacher here, another identity document, not effective, already leaving) with an
automatic rejection.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.errors import ConflictError, NotFoundError, invalid
from provincial_node.models import Teacher, TeacherHistory, Transfer, Unit, UpwardMessage
from provincial_node.services import audit, transfers
from provincial_node.services.access import Actor
from sync_protocol import transfer as tr
from sync_protocol.canonical import canonical_bytes, format_time, parse_time
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import check_province, check_teacher_number
from sync_protocol.inbox import InboxMessage

COMPLETION = "completion"  # next_step once every step is decided: waiting for the national node
TRANSFERRED_OUT = "304"  # 人员状态: 调出
STARTER_LAST = {"transfer": "receiving_bureau", "rotation_transfer": "sending_bureau"}
MAX_FILE_BYTES = 900 * 1024


def is_cross(t: Transfer) -> bool:
    return t.remote_province is not None


def sent(t: Transfer) -> bool:
    """The national node knows this request (it left this node, or came from the other province)."""
    return is_cross(t) and t.transfer_uid is not None


def started_here(t: Transfer) -> bool:
    return (t.role == "to") == (tr.FLOWS[t.kind]["starter"] == "to")


def local_step(t: Transfer, step: str) -> bool:
    if not is_cross(t):
        return True
    return step.startswith("receiving") == (t.role == "to")


def mark_cross(
    t: Transfer, role: str, remote: str, teacher: Teacher | None, school_code: str, school_name: str
) -> None:
    t.role, t.remote_province = role, remote
    t.remote_school_code, t.remote_school_name = school_code, school_name
    if teacher is not None:
        t.teacher_number, t.doc_type, t.doc_number = teacher.teacher_number, teacher.doc_type, teacher.doc_number


def where_it_went(session: Session, teacher_number: str) -> str | None:
    """The province a teacher held here was last transferred to (to ask for them back), if any."""
    return session.scalar(
        select(Transfer.remote_province)
        .where(Transfer.teacher_number == teacher_number, Transfer.role == "from", Transfer.status == "completed")
        .order_by(Transfer.id.desc())
        .limit(1)
    )


def to_json(t: Transfer) -> dict[str, Any] | None:
    if not is_cross(t):
        return None
    return {
        "transfer_id": t.transfer_uid,
        "role": t.role,
        "other_province": t.remote_province,
        "teacher_number": t.teacher_number,
        "other_school": {"code": t.remote_school_code, "name": t.remote_school_name},
    }


# --------------------------------------------------------------------------------------------- starting


def start_transfer(
    session: Session,
    actor: Actor,
    province: str,
    from_province: str,
    teacher_number: str,
    doc_type: str,
    doc_number: str,
    school: Unit,
    reason: str,
    now: dt.datetime,
    expiry: dt.timedelta,
) -> Transfer:
    """B's school asks for a teacher of province ``from_province`` (sent once B's bureau approves)."""
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
            Teacher.doc_type == doc_type, Teacher.doc_number == doc_number, Teacher.status != "transferred_out"
        )
    )
    if here is not None:
        raise ConflictError(
            f"this person already has a file in this province (teacher {here.teacher_number})",
            details={"teacher_number": here.teacher_number},
        )
    if session.scalar(select(Transfer.id).where(Transfer.teacher_number == teacher_number, Transfer.status == "open")):
        raise ConflictError("this teacher already has an open transfer request here")
    if not (reason or "").strip():
        raise invalid("transfer", "reason", "须说明调动原因", "a reason is required")
    t = Transfer(
        kind="transfer",
        teacher_id=None,
        from_unit_id=None,
        to_unit_id=school.id,
        to_unit_name=school.name,
        next_step="receiving_bureau",
        reason=reason.strip(),
        started_by=actor.account_id,
        started_at=now,
        expires_at=now + expiry,
        steps=[],
        role="to",
        remote_province=from_province,
        teacher_number=teacher_number,
        doc_type=doc_type,
        doc_number=doc_number,
    )
    transfers.add_step(t, actor, "start", "start", reason, now)
    session.add(t)
    session.flush()
    audit.record(
        session,
        actor,
        "transfer.start",
        "transfer",
        t.id,
        school.path,
        reason=reason,
        teacher=teacher_number,
        from_province=from_province,
    )
    return t


def _queue(
    session: Session, t: Transfer, province: str, kind: str, body: dict[str, Any], now: dt.datetime
) -> UpwardMessage:
    try:
        payload = tr.transfer_payload(province=province, kind=kind, created_at=now, body=body)
    except ProtocolError as e:  # e.g. a reason longer than the protocol carries: nothing of the step is kept
        field = str(e.details.get("field") or "transfer")
        raise invalid("transfer", field, "跨省调动信息不符合协议要求", e.message, body.get(field)) from None
    msg = UpwardMessage(
        transfer_id=t.id, kind=kind, payload=payload, message_hash=hashlib.sha256(payload).hexdigest(), created_at=now
    )
    session.add(msg)
    return msg


def _request_body(session: Session, t: Transfer, province: str) -> dict[str, Any]:
    if t.kind == "transfer":
        school = session.get(Unit, t.to_unit_id)
        return {
            "transfer_id": t.transfer_uid,
            "kind": "transfer",
            "teacher_number": t.teacher_number,
            "identity": {"doc_type": t.doc_type, "doc_number": t.doc_number},
            "from_province": t.remote_province,
            "to_province": province,
            "from_school": None,
            "receiving_school": {"code": school.code, "name": school.name},
            "rotation": None,
            "reason": t.reason,
            "requested_at": format_time(t.started_at),
            "expires_at": format_time(t.expires_at),
        }
    school = session.get(Unit, t.from_unit_id)
    return {
        "transfer_id": t.transfer_uid,
        "kind": "rotation_transfer",
        "teacher_number": t.teacher_number,
        "identity": {"doc_type": t.doc_type, "doc_number": t.doc_number},
        "from_province": province,
        "to_province": t.remote_province,
        "from_school": {"code": school.code, "name": school.name},
        "receiving_school": {"code": t.remote_school_code, "name": t.remote_school_name},
        "rotation": {"type": t.rotation_type, "start_month": t.start_month, "end_month": t.end_month},
        "reason": t.reason,
        "requested_at": format_time(t.started_at),
        "expires_at": format_time(t.expires_at),
    }


def after_local_decision(
    session: Session,
    catalogue: Catalogue,
    province: str,
    t: Transfer,
    step: str,
    decision: str,
    reason: str | None,
    now: dt.datetime,
) -> None:
    """What a decision on a cross-province request sends (``transfers.decide`` recorded the step)."""
    steps = transfers.STEPS[t.kind]
    if step == STARTER_LAST[t.kind]:  # the starting province's last own step
        if decision == "approve":
            t.transfer_uid = f"{province}-{t.id}-{secrets.token_hex(4)}"
            t.next_step = steps[steps.index(step) + 1]
            _queue(session, t, province, "transfer_request", _request_body(session, t, province), now)
        return
    body = {
        "transfer_id": t.transfer_uid,
        "step": step,
        "decision": decision,
        "reason": (reason or "").strip() or None,
        "answered_at": format_time(now),
    }
    _queue(session, t, province, "transfer_answer", body, now)
    if decision == "approve":
        i = steps.index(step)
        t.next_step = steps[i + 1] if i + 1 < len(steps) else COMPLETION
        if t.next_step == COMPLETION and t.role == "from":
            _queue_file(session, catalogue, province, t, now)


def queue_withdrawal(session: Session, t: Transfer, reason: str, now: dt.datetime) -> None:
    """The starter's withdrawal (only the starter withdraws; its province prefixes the transfer id)."""
    body = {"transfer_id": t.transfer_uid, "reason": reason, "withdrawn_at": format_time(now)}
    _queue(session, t, t.transfer_uid.split("-", 1)[0], "transfer_withdrawal", body, now)


# ------------------------------------------------------------------------------------------------- files


def moved_data(
    catalogue: Catalogue, t: Transfer, data: dict[str, Any], from_name: str, now: dt.datetime
) -> dict[str, Any]:
    """The holding province's file after the move: 工作经历 closed (and the 交流轮岗 record of a rotation)."""
    out = copy.deepcopy(data)
    if t.kind == "rotation_transfer":
        transfers.rotation_record(out, t, from_name)
    transfers.close_work(out, from_name, transfers.month_of(now))
    return out


def _catalogue_only(catalogue: Catalogue, data: dict[str, Any]) -> dict[str, Any]:
    """Every record group, without the province's custom indicators (X_… fields) and unknown groups."""
    out: dict[str, Any] = {}
    for gcode, content in data.items():
        group = catalogue.groups.get(gcode)
        if group is None:
            continue
        codes = {f.code for f in group.fields}
        rows = content if isinstance(content, list) else [content]
        kept = [{k: v for k, v in row.items() if k in codes} for row in rows]
        out[gcode] = kept if isinstance(content, list) else kept[0]
    return out


def _history(session: Session, teacher: Teacher, with_changes: bool) -> list[dict[str, Any]]:
    rows = session.scalars(
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


def build_file(
    session: Session, catalogue: Catalogue, t: Transfer, teacher: Teacher, now: dt.datetime
) -> dict[str, Any]:
    from_name = session.get(Unit, teacher.unit_id).name
    groups = _catalogue_only(catalogue, moved_data(catalogue, t, teacher.data, from_name, now))
    file = {"groups": json_safe(groups), "history": json_safe(_history(session, teacher, True))}
    if len(canonical_bytes(file)) > MAX_FILE_BYTES:  # keep the message within the protocol's limit
        file["history"] = json_safe(_history(session, teacher, False))
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


def _queue_file(session: Session, catalogue: Catalogue, province: str, t: Transfer, now: dt.datetime) -> None:
    teacher = session.get(Teacher, t.teacher_id)
    file = build_file(session, catalogue, t, teacher, now)
    body = {
        "transfer_id": t.transfer_uid,
        "teacher_number": teacher.teacher_number,
        "file": file,
        "file_hash": tr.file_hash(file),
        "sent_at": format_time(now),
    }
    _queue(session, t, province, "transfer_file", body, now)


# ------------------------------------------------------------------------------------------------- inbox


def _by_uid(session: Session, uid: str) -> Transfer:
    t = session.scalar(select(Transfer).where(Transfer.transfer_uid == uid))
    if t is None:
        raise NotFoundError(f"no cross-province transfer {uid} in this province")
    return t


def process(session: Session, catalogue: Catalogue, province: str, msg: InboxMessage, now: dt.datetime) -> None:
    """Apply one verified inbox message about a transfer (called in the transaction that stores it); the
    event is in the audit trail under the units of this province that the transfer touches."""
    b = msg.body
    if msg.kind == "transfer_request":
        t = _on_request(session, province, b, now)
    else:
        t = _apply(session, catalogue, province, msg, now)
    unit_id = t.from_unit_id if t.role == "from" else t.to_unit_id
    unit = session.get(Unit, unit_id) if unit_id else session.scalar(select(Unit).where(Unit.level == "province"))
    audit.record(
        session,
        None,
        f"{t.kind}.{msg.kind}",
        "transfer",
        t.id,
        unit.path if unit else "/",
        reason=b.get("reason"),
        transfer_id=t.transfer_uid,
        inbox_seq=msg.seq,
        from_province=t.remote_province if t.role == "to" else province,
    )


def _apply(session: Session, catalogue: Catalogue, province: str, msg: InboxMessage, now: dt.datetime) -> Transfer:
    b = msg.body
    t = _by_uid(session, b["transfer_id"])
    if msg.kind == "transfer_answer":
        _on_answer(session, catalogue, province, t, b, now)
    elif msg.kind == "transfer_closed":
        if t.status == "open":
            t.status, t.finished_at, t.next_step = b["outcome"], now, None
        transfers.add_step(t, None, "national", b["outcome"], b["reason"], now, by="national node")
    elif msg.kind == "transfer_completion":
        if t.status == "completed":
            return t
        if t.role == "to":
            _receive_file(session, catalogue, province, t, b, now)
        else:
            _hand_over(session, catalogue, province, t, b, now)
        transfers.add_step(t, None, "completion", "completed", None, now, by="national node")
        t.status, t.finished_at, t.next_step = "completed", now, None
    return t


def _refuse(session: Session, province: str, t: Transfer, step: str, reason: str, now: dt.datetime) -> None:
    """An automatic rejection of a request this province cannot honour."""
    transfers.add_step(t, None, step, "reject", reason, now)
    t.status, t.finished_at, t.next_step = "rejected", now, None
    body = {
        "transfer_id": t.transfer_uid,
        "step": step,
        "decision": "reject",
        "reason": reason,
        "answered_at": format_time(now),
    }
    session.flush()
    _queue(session, t, province, "transfer_answer", body, now)


def _on_request(session: Session, province: str, b: dict[str, Any], now: dt.datetime) -> Transfer:
    known = session.scalar(select(Transfer).where(Transfer.transfer_uid == b["transfer_id"]))
    if known is not None:
        return known  # a request is routed once; defensive
    role = "from" if b["from_province"] == province else "to"
    remote = b["to_province"] if role == "from" else b["from_province"]
    other = b["receiving_school"] if role == "from" else b["from_school"]
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
        role=role,
        remote_province=remote,
        teacher_number=b["teacher_number"],
        doc_type=b["identity"]["doc_type"],
        doc_number=b["identity"]["doc_number"],
        remote_school_code=other["code"],
        remote_school_name=other["name"],
        next_step=tr.FLOWS[b["kind"]]["steps"][0],
    )
    if b["rotation"]:
        t.rotation_type, t.start_month, t.end_month = (
            b["rotation"]["type"],
            b["rotation"]["start_month"],
            b["rotation"]["end_month"],
        )
    transfers.add_step(t, None, "start", "start", b["reason"], now, by=f"province {remote}")
    session.add(t)
    session.flush()
    first = t.next_step
    if role == "from":
        teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == b["teacher_number"]))
        if teacher is None or teacher.status == "transferred_out":
            _refuse(
                session, province, t, first, f"teacher {b['teacher_number']} is not held by province {province}", now
            )
            return t
        t.teacher_id, t.from_unit_id = teacher.id, teacher.unit_id
        if (teacher.doc_type, teacher.doc_number) != (b["identity"]["doc_type"], b["identity"]["doc_number"]):
            _refuse(session, province, t, first, "the identity document does not match the teacher number", now)
        elif not teacher.ever_effective:
            _refuse(session, province, t, first, "the teacher's file is not effective", now)
        elif session.scalar(
            select(Transfer.id).where(Transfer.teacher_id == teacher.id, Transfer.status == "open", Transfer.id != t.id)
        ):
            _refuse(session, province, t, first, "the teacher already has an open transfer or rotation", now)
        return t
    school = session.scalar(select(Unit).where(Unit.code == b["receiving_school"]["code"], Unit.level == "school"))
    here = session.scalar(
        select(Teacher).where(
            Teacher.doc_type == t.doc_type, Teacher.doc_number == t.doc_number, Teacher.status != "transferred_out"
        )
    )
    if school is None:
        _refuse(session, province, t, first, f"no school {b['receiving_school']['code']} in province {province}", now)
    elif here is not None:
        _refuse(session, province, t, first, f"the person already has a file here (teacher {here.teacher_number})", now)
    else:
        t.to_unit_id, t.to_unit_name = school.id, school.name
    return t


def _on_answer(
    session: Session, catalogue: Catalogue, province: str, t: Transfer, b: dict[str, Any], now: dt.datetime
) -> None:
    transfers.add_step(t, None, b["step"], b["decision"], b["reason"], now, by=f"province {t.remote_province}")
    if t.status != "open":
        return
    if b["decision"] == "reject":
        t.status, t.finished_at, t.next_step = "rejected", now, None
        return
    steps = transfers.STEPS[t.kind]
    i = steps.index(b["step"])
    t.next_step = steps[i + 1] if i + 1 < len(steps) else COMPLETION
    if t.next_step == COMPLETION and t.role == "from":  # rotation: B approved last, A sends the file
        _queue_file(session, catalogue, province, t, now)


def _receive_file(
    session: Session, catalogue: Catalogue, province: str, t: Transfer, b: dict[str, Any], now: dt.datetime
) -> None:
    """B: the file under the same teacher number, effective, with A's history and the opening 工作经历."""
    file = b["file"]
    if file is None:
        raise ConflictError("the completion for the receiving province carries no file")
    school = session.get(Unit, t.to_unit_id)
    data = copy.deepcopy(file["groups"])
    transfers.open_work(data, school.name, transfers.month_of(now))
    data.setdefault("JBXX", {})["RYZTM"] = transfers.IN_POST
    teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == b["teacher_number"]))
    if teacher is None:
        teacher = Teacher(
            teacher_number=b["teacher_number"],
            unit_id=school.id,
            doc_type=t.doc_type,
            doc_number=t.doc_number,
            name=data.get("JBXX", {}).get("XM") or t.teacher_number,
            status="effective",
            ever_effective=True,
            data={},
            draft={},
            file_version=0,
        )
        session.add(teacher)
        session.flush()
    elif teacher.status != "transferred_out":
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
    teacher.unit_id, teacher.status, teacher.ever_effective = school.id, "effective", True
    teacher.name = data.get("JBXX", {}).get("XM") or teacher.name
    t.teacher_id = teacher.id
    transfers.save_moved(
        session,
        None,
        catalogue,
        province,
        teacher,
        data,
        "transfer_in",
        f"{t.kind} {t.transfer_uid} from province {t.remote_province}",
        "upsert",
    )


def _hand_over(
    session: Session, catalogue: Catalogue, province: str, t: Transfer, b: dict[str, Any], now: dt.datetime
) -> None:
    """A: the teacher is 调出 (人员状态 304); the file stays, read-only, with the closing 工作经历."""
    teacher = session.get(Teacher, t.teacher_id)
    data = moved_data(catalogue, t, teacher.data, session.get(Unit, teacher.unit_id).name, now)
    data.setdefault("JBXX", {})["RYZTM"] = TRANSFERRED_OUT
    teacher.status = "transferred_out"
    transfers.save_moved(
        session,
        None,
        catalogue,
        province,
        teacher,
        data,
        "transfer_out",
        f"{t.kind} {t.transfer_uid} to province {t.remote_province}",
        "transfer_out",
        to_province=t.remote_province,
    )


# ------------------------------------------------------------------------------------------------ views


def pending_messages(session: Session) -> list[UpwardMessage]:
    return list(
        session.scalars(select(UpwardMessage).where(UpwardMessage.status == "pending").order_by(UpwardMessage.id))
    )


def refused(session: Session, m: UpwardMessage, code: str, reason: str, now: dt.datetime) -> None:
    """The national node refused a message. A refused request never existed there: the request is rejected
    here; any other refusal is noted on the transfer (the national node's own messages settle its state)."""
    m.status, m.error_code, m.last_error, m.attempts = "refused", code, reason[:2000], m.attempts + 1
    t = session.get(Transfer, m.transfer_id)
    transfers.add_step(t, None, m.kind, "refused", f"national node: {reason} [{code}]", now, by="national node")
    if m.kind == "transfer_request" and t.status == "open":
        t.status, t.finished_at, t.next_step = "rejected", now, None
