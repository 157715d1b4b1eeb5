"""Cross-province transfers brokered by the national node (DESIGN §7, docs/protocol.md §15).

A province pushes a signed transfer message (:mod:`sync_protocol.transfer`); :func:`accept`:

1. verifies the signature (a key of the sending province in the trust in force) and the schema; an
   identical message accepted before answers with its stored receipt and changes nothing;
2. locks the transfer row and applies the shared state machine (:func:`sync_protocol.transfer.advance`);
   a message that does not fit is refused with ``protocol_transfer_state`` and nothing is stored;
3. in the same transaction: updates the transfer, routes what the other province must know to its inbox
   (the request, each answer, withdrawal; the completion to both), on the file moves ownership of the
   teacher number from A to B (``teacher_core.province_code``; version reset, so B's own record versions
   apply), appends a ``message`` leaf to the acceptance log and stores the envelope with the receipt.

Sealed identities (:mod:`national_node.sealing`): the identity of a request and the ID numbers of a moved file
arrive sealed to the sending province's seal key and are stored so. What is routed to the other province is
sealed again, in memory, to *its* newest registered seal key (the request's ``identity.doc_number``; the file's
``JBXX.SFZJH`` and history values, with ``file_hash`` of the file as routed); the sending province's own completion
keeps the hash it signed. A destination without a registered seal key gets nothing it could not open: the message
is refused with ``protocol_seal_invalid``.

Open requests past their ``expires_at`` are closed by :func:`expire_due` (the hourly job of ``serve``,
``tmis national transfers expire``, and before every transfer message), which tells both provinces.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from national_node import sealing
from national_node.inbox import routing
from national_node.intake.models import TeacherCore, TeacherCoreHistory
from national_node.keys import NodeKeys
from national_node.ledger import ledger
from national_node.transfers.models import Transfer, TransferMessage
from sync_protocol import transfer as tr
from sync_protocol.canonical import format_time, parse_time
from sync_protocol.log import message_leaf

TRANSFER_IN = "transfer_in"  # teacher_core.op once the national node moved ownership (not a record op)


def _state(row: Transfer) -> tr.TransferState:
    return tr.TransferState(
        row.transfer_id,
        row.kind,
        row.teacher_number,
        row.from_province,
        row.to_province,
        row.expires_at,
        row.state,
        row.next_step,
    )


def _step(row: Transfer, what: str, province: str | None, now: dt.datetime, **extra: Any) -> None:
    row.steps = [*row.steps, {"what": what, "province": province, "at": format_time(now), **extra}]
    row.updated_at = now


def accept(
    session: Session, keys: NodeKeys, origin: str, province: str, data: bytes, now: dt.datetime | None = None
) -> tuple[bytes, bool]:
    """Accept one transfer message from ``province``; returns (receipt, new)."""
    now = now or utcnow()
    trust = ledger.current_trust(session)
    msg = tr.verify_transfer_message(data, trust, province)
    stored = session.get(TransferMessage, msg.message_hash)
    if stored is not None:
        return stored.receipt, False
    row = session.execute(
        select(Transfer).where(Transfer.transfer_id == msg.transfer_id).with_for_update()
    ).scalar_one_or_none()
    if msg.kind == "transfer_request":
        if row is not None:
            raise tr.TransferStateError(
                "this transfer id is already used by another request", transfer_id=msg.transfer_id
            )
        row = _open(session, keys, msg, now)
    else:
        if row is None:
            raise tr.TransferStateError("no such transfer", transfer_id=msg.transfer_id)
        state = tr.advance(_state(row), msg, now)
        _apply(session, keys, row, msg, state, now)
    leaf = message_leaf(
        province=province,
        kind=msg.kind,
        transfer_id=msg.transfer_id,
        message_hash=msg.message_hash,
        accepted_at=now,
        trust_version=trust.version,
    )
    appended = ledger.append_leaf(session, leaf)
    receipt = ledger.receipt(keys, origin, appended, leaf).to_bytes()
    session.add(
        TransferMessage(
            message_hash=msg.message_hash,
            transfer_id=msg.transfer_id,
            province_code=province,
            kind=msg.kind,
            envelope=data,
            leaf_index=appended.index,
            receipt=receipt,
            accepted_at=now,
        )
    )
    session.flush()
    return receipt, True


def _open(session: Session, keys: NodeKeys, msg: tr.TransferMessage, now: dt.datetime) -> Transfer:
    state = tr.start(msg)
    b = msg.body
    core = session.get(TeacherCore, b["teacher_number"])
    if core is not None and core.province_code != state.from_province:
        raise tr.TransferOwnerError(
            f"teacher {b['teacher_number']} is held by province {core.province_code}, not {state.from_province}",
            owner=core.province_code,
        )
    busy = session.scalar(
        select(Transfer.transfer_id).where(
            Transfer.teacher_number == b["teacher_number"], Transfer.state.in_(tr.IN_FLIGHT)
        )
    )
    if busy:
        raise tr.TransferStateError("the teacher already has a cross-province transfer in flight", transfer_id=busy)
    if now > state.expires_at:
        raise tr.TransferStateError("the request has already expired", expires_at=b["expires_at"])
    row = Transfer(
        transfer_id=state.transfer_id,
        kind=state.kind,
        teacher_number=state.teacher_number,
        from_province=state.from_province,
        to_province=state.to_province,
        state=state.state,
        next_step=state.next_step,
        request=b,
        steps=[],
        requested_at=parse_time(b["requested_at"], "requested_at"),
        expires_at=state.expires_at,
        updated_at=now,
    )
    _step(row, "request", msg.province, now, message_hash=msg.message_hash)
    session.add(row)
    other = state.other(msg.province)
    number = sealing.reseal(
        session,
        sealing.seal_keys_of(keys),
        b["identity"]["doc_number"],
        from_province=msg.province,
        to_province=other,
        teacher_number=b["teacher_number"],
        field=sealing.TRANSFER_FIELD,
    )
    routed = {**b, "identity": {**b["identity"], "doc_number": number}}
    routing.route(session, keys, other, "transfer_request", routed, now)
    return row


def _apply(
    session: Session, keys: NodeKeys, row: Transfer, msg: tr.TransferMessage, state: tr.TransferState, now: dt.datetime
) -> None:
    b = msg.body
    row.state, row.next_step = state.state, state.next_step
    if msg.kind == "transfer_answer":
        _step(row, f"{b['step']}:{b['decision']}", msg.province, now, reason=b["reason"], message_hash=msg.message_hash)
        routing.route(session, keys, state.other(msg.province), "transfer_answer", b, now)
    elif msg.kind == "transfer_withdrawal":
        _step(row, "withdrawn", msg.province, now, reason=b["reason"], message_hash=msg.message_hash)
        _close(session, keys, row, tr.State.WITHDRAWN, b["reason"], now)
    else:
        _move_ownership(session, keys, row, msg, now)
        _step(row, "completed", msg.province, now, file_hash=b["file_hash"], message_hash=msg.message_hash)
        row.completed_at, row.file_hash = now, b["file_hash"]
        common = {
            "transfer_id": row.transfer_id,
            "teacher_number": row.teacher_number,
            "from_province": row.from_province,
            "to_province": row.to_province,
            "file_hash": b["file_hash"],
            "completed_at": format_time(now),
        }
        routed = _reseal_file(session, keys, b["file"], b["teacher_number"], row.from_province, row.to_province)
        for province in sorted((row.from_province, row.to_province)):
            if province == row.to_province:
                body = {**common, "file": routed, "file_hash": tr.file_hash(routed)}
            else:
                body = {**common, "file": None}
            routing.route(session, keys, province, "transfer_completion", body, now)


def _reseal_file(
    session: Session, keys: NodeKeys, file: dict[str, Any], teacher_number: str, source: str, destination: str
) -> dict[str, Any]:
    """The moved file with its ID numbers sealed again from the sending to the receiving province."""
    seal_keys = sealing.seal_keys_of(keys)
    groups = dict(file["groups"])
    basic = groups.get("JBXX")

    def again(value: Any, field: str) -> Any:
        return sealing.reseal(
            session,
            seal_keys,
            value,
            from_province=source,
            to_province=destination,
            teacher_number=teacher_number,
            field=field,
        )

    if isinstance(basic, dict) and isinstance(basic.get("SFZJH"), str):
        groups["JBXX"] = {**basic, "SFZJH": again(basic["SFZJH"], sealing.IDENTITY_FIELD)}
    history = []
    for h in file["history"]:
        if isinstance(h.get("changes"), list):
            h = {
                **h,
                "changes": [
                    {
                        **c,
                        **{k: again(c[k], sealing.HISTORY_FIELD) for k in ("old", "new") if isinstance(c.get(k), str)},
                    }
                    if isinstance(c, dict) and (c.get("group"), c.get("field")) == ("JBXX", "SFZJH")
                    else c
                    for c in h["changes"]
                ],
            }
        history.append(h)
    return {**file, "groups": groups, "history": history}


def _identity_index(session: Session, keys: NodeKeys, row: Transfer, identity: dict[str, str]) -> str:
    """The keyed index of a request's identity (sealed by the province that started the transfer)."""
    starter = row.from_province if tr.FLOWS[row.kind]["starter"] == "from" else row.to_province
    seal_keys = sealing.seal_keys_of(keys)
    number = sealing.opener(session, seal_keys, starter).clear(
        identity["doc_number"], teacher_number=row.teacher_number, field=sealing.TRANSFER_FIELD
    )
    return seal_keys.identity_index(identity["doc_type"], number)


def _move_ownership(session: Session, keys: NodeKeys, row: Transfer, msg: tr.TransferMessage, now: dt.datetime) -> None:
    """Teacher number A → B. The version is reset: the next record of B (its own version counter) applies."""
    core = session.execute(
        select(TeacherCore).where(TeacherCore.teacher_number == row.teacher_number).with_for_update()
    ).scalar_one_or_none()
    if core is None:  # never synchronised by A: B's first record fills it
        identity = row.request["identity"]
        core = TeacherCore(
            teacher_number=row.teacher_number,
            province_code=row.to_province,
            version=0,
            op=TRANSFER_IN,
            fields={},
            withheld=[],
            identity_key=_identity_index(session, keys, row, identity),
            updated_at=now,
        )
        session.add(core)
    elif core.province_code != row.from_province:
        raise tr.TransferOwnerError(
            f"teacher {row.teacher_number} is held by province {core.province_code}", owner=core.province_code
        )
    else:
        core.province_code, core.version, core.op, core.updated_at = row.to_province, 0, TRANSFER_IN, now
    session.add(
        TeacherCoreHistory(
            teacher_number=row.teacher_number,
            province_code=row.to_province,
            version=0,
            batch_hash=msg.message_hash,
            op=TRANSFER_IN,
            fields=core.fields or {},
            applied_at=now,
        )
    )


def _close(session: Session, keys: NodeKeys, row: Transfer, outcome: str, reason: str | None, now: dt.datetime) -> None:
    row.state, row.next_step = outcome, None
    body = {"transfer_id": row.transfer_id, "outcome": outcome, "reason": reason, "closed_at": format_time(now)}
    for province in sorted((row.from_province, row.to_province)):
        routing.route(session, keys, province, "transfer_closed", body, now)


def expire_due(session: Session, keys: NodeKeys, now: dt.datetime | None = None) -> list[str]:
    """Close every open request past its deadline and tell both provinces; returns the transfer ids."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Transfer)
            .where(Transfer.state == tr.State.OPEN, Transfer.expires_at < now)
            .order_by(Transfer.transfer_id)
            .with_for_update()
        )
    )
    for row in due:
        _step(row, "expired", None, now)
        _close(session, keys, row, tr.State.EXPIRED, "the request expired before every step was decided", now)
    return [row.transfer_id for row in due]


def in_flight(session: Session, include_closed: bool = False) -> list[Transfer]:
    stmt = select(Transfer).order_by(Transfer.requested_at, Transfer.transfer_id)
    if not include_closed:
        stmt = stmt.where(Transfer.state.in_(tr.IN_FLIGHT))
    return list(session.scalars(stmt))


def waiting_for(row: Transfer) -> str | None:
    """The province the transfer waits for (None when closed)."""
    if row.state == tr.State.AWAITING_FILE:
        return row.from_province
    if row.state != tr.State.OPEN:
        return None
    return _state(row).decider


def to_json(row: Transfer, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "transfer_id": row.transfer_id,
        "kind": row.kind,
        "teacher_number": row.teacher_number,
        "from_province": row.from_province,
        "to_province": row.to_province,
        "state": row.state,
        "next_step": row.next_step,
        "waiting_for": waiting_for(row),
        "requested_at": format_time(row.requested_at),
        "expires_at": format_time(row.expires_at),
        "age_hours": round((now - row.requested_at).total_seconds() / 3600, 1),
        "completed_at": format_time(row.completed_at) if row.completed_at else None,
        "file_hash": row.file_hash,
        "steps": row.steps,
    }


def get(session: Session, transfer_id: str) -> Transfer | None:
    return session.get(Transfer, transfer_id)


def messages(session: Session, transfer_id: str) -> list[TransferMessage]:
    return list(
        session.scalars(
            select(TransferMessage)
            .where(TransferMessage.transfer_id == transfer_id)
            .order_by(TransferMessage.leaf_index)
        )
    )
