"""Inbox messages: what the national node routes down to one province.

Each message is a DSSE envelope (payload type ``application/vnd.tmis.inbox-message.v1+json``) signed by
a threshold-1 of the national *message keys* listed in the trust metadata. Payload::

    {"protocol": "tmis-sync/1", "type": "inbox", "province": "11", "seq": 5,
     "kind": "transfer_request", "created_at": "2026-11-22T08:00:00Z", "body": {...}}

``seq`` is gapless per destination province from 1: a province accepts exactly ``last + 1``; the
identical message again is benign (:class:`AlreadyAcceptedError`), a different one under a used ``seq``
is equivocation. ``body`` per ``kind`` (every key required, no others):

==========================  ====================================================================================
kind                        body
==========================  ====================================================================================
``transfer_request``        the request body exactly as the starting province signed it
                            (:func:`sync_protocol.transfer.check_request`), routed to the other province
``transfer_answer``         the answer body as the deciding province signed it (step, decision, reason), routed
                            to the other province
``transfer_closed``         transfer_id, outcome (``withdrawn`` | ``expired``), reason (string or null), closed_at
``transfer_completion``     transfer_id, teacher_number, from_province, to_province, file_hash, file (the file
                            for the receiving province, null for the sending one), completed_at
``duplicate_identity``      doc_type, teacher_numbers [{teacher_number, province}] (≥ 2), detected_at — never the
                            ID number: each province looks its own file up (tmis-sync/1 since the sealed
                            identities; before, an ``identity`` object carried the number in clear)
``trust_update``            version, envelope (the trust DSSE envelope, as a JSON object)
==========================  ====================================================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync_protocol import PROTOCOL
from sync_protocol._schema import exact_keys, hex_hash, integer, list_of, one_of, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical
from sync_protocol.dsse import (
    INBOX_PAYLOAD_TYPE,
    encode_envelope,
    envelope_from_json,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from sync_protocol.errors import (
    AlreadyAcceptedError,
    EquivocationError,
    LimitExceededError,
    MalformedError,
    SequenceGapError,
    SequenceStaleError,
)
from sync_protocol.identifiers import check_province, check_teacher_number
from sync_protocol.keys import Signer
from sync_protocol.transfer import DOC_TYPE, TRANSFER_ID, check_answer, check_file, check_request, file_hash
from sync_protocol.trust import TrustMetadata

MAX_MESSAGE_BYTES = 2 * 1024 * 1024  # a completion carries the file (at most 1 MiB)


def _closed(b: dict) -> None:
    exact_keys(b, {"transfer_id", "outcome", "reason", "closed_at"}, "transfer_closed")
    string(b, "transfer_id", "transfer_closed", pattern=TRANSFER_ID)
    one_of(b, "outcome", "transfer_closed", {"withdrawn", "expired"})
    string(b, "reason", "transfer_closed", max_len=500, nullable=True)
    time(b, "closed_at", "transfer_closed")


def _transfer_completion(b: dict) -> None:
    exact_keys(
        b,
        {"transfer_id", "teacher_number", "from_province", "to_province", "file_hash", "file", "completed_at"},
        "transfer_completion",
    )
    string(b, "transfer_id", "transfer_completion", pattern=TRANSFER_ID)
    check_teacher_number(b["teacher_number"])
    check_province(b["from_province"])
    check_province(b["to_province"])
    digest = hex_hash(b, "file_hash", "transfer_completion")
    if b["file"] is not None and file_hash(check_file(b["file"], "transfer_completion.file")) != digest:
        raise MalformedError("transfer_completion.file_hash is not the SHA-256 of the canonical file")
    time(b, "completed_at", "transfer_completion")


def _duplicate_identity(b: dict) -> None:
    exact_keys(b, {"doc_type", "teacher_numbers", "detected_at"}, "duplicate_identity")
    string(b, "doc_type", "duplicate_identity", max_len=1, pattern=DOC_TYPE)

    def entry(e: Any) -> Any:
        exact_keys(e, {"teacher_number", "province"}, "duplicate_identity.teacher_numbers[]")
        check_teacher_number(e["teacher_number"])
        check_province(e["province"])
        return e

    if len(list_of(b, "teacher_numbers", "duplicate_identity", entry, max_items=32)) < 2:
        raise MalformedError("a duplicate-identity notice names at least two teacher numbers")
    time(b, "detected_at", "duplicate_identity")


def _trust_update(b: dict) -> None:
    exact_keys(b, {"version", "envelope"}, "trust_update")
    integer(b, "version", "trust_update", minimum=1)
    envelope_from_json(b["envelope"])


BODY_CHECKS: dict[str, Callable[[dict], None]] = {
    "transfer_request": check_request,
    "transfer_answer": check_answer,
    "transfer_closed": _closed,
    "transfer_completion": _transfer_completion,
    "duplicate_identity": _duplicate_identity,
    "trust_update": _trust_update,
}


@dataclass(frozen=True)
class InboxMessage:
    province: str
    seq: int
    kind: str
    created_at: dt.datetime
    body: dict
    message_hash: str  # hex SHA-256 of the signed payload
    envelope: bytes


def build_inbox_message(
    *, province: str, seq: int, kind: str, created_at: dt.datetime, body: dict, signer: Signer
) -> bytes:
    payload = canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "inbox",
            "province": province,
            "seq": seq,
            "kind": kind,
            "created_at": format_time(created_at),
            "body": body,
        }
    )
    _message_from_payload(payload, b"")
    return encode_envelope(sign_envelope(payload, INBOX_PAYLOAD_TYPE, [signer]))


def _message_from_payload(payload: bytes, envelope: bytes) -> InboxMessage:
    obj = parse_canonical(payload)
    exact_keys(obj, {"protocol", "type", "province", "seq", "kind", "created_at", "body"}, "inbox message")
    if obj["protocol"] != PROTOCOL or obj["type"] != "inbox":
        raise MalformedError(f"not a {PROTOCOL} inbox message")
    kind = one_of(obj, "kind", "inbox message", set(BODY_CHECKS))
    if not isinstance(obj["body"], dict):
        raise MalformedError("inbox message body must be an object")
    BODY_CHECKS[kind](obj["body"])
    return InboxMessage(
        check_province(obj["province"]),
        integer(obj, "seq", "inbox message", minimum=1),
        kind,
        time(obj, "created_at", "inbox message"),
        obj["body"],
        hashlib.sha256(payload).hexdigest(),
        envelope,
    )


def verify_inbox_message(data: bytes, trust: TrustMetadata, province: str) -> InboxMessage:
    """Verify signature (national message keys), destination and schema; no sequence check."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise LimitExceededError(f"message larger than {MAX_MESSAGE_BYTES} bytes", size=len(data))
    env = parse_envelope(data)
    verify_envelope(env, INBOX_PAYLOAD_TYPE, trust.message_keys, 1)
    msg = _message_from_payload(env.payload, data)
    if msg.province != check_province(province):
        raise MalformedError("message addressed to another province", to=msg.province, province=province)
    return msg


def accept_inbox_message(
    data: bytes, *, trust: TrustMetadata, province: str, last_seq: int, stored_hash: Callable[[int], str | None]
) -> InboxMessage:
    """The province side: verify a pulled message and require exactly ``last_seq + 1``."""
    msg = verify_inbox_message(data, trust, province)
    if msg.seq <= last_seq:
        stored = stored_hash(msg.seq)
        if stored == msg.message_hash:
            raise AlreadyAcceptedError("message already processed", seq=msg.seq)
        if stored is not None:
            raise EquivocationError(
                "two different messages with one sequence number",
                seq=msg.seq,
                accepted=stored,
                offered=msg.message_hash,
            )
        raise SequenceStaleError("message sequence already passed", seq=msg.seq, last_seq=last_seq)
    if msg.seq != last_seq + 1:
        raise SequenceGapError(f"expected message {last_seq + 1}, got {msg.seq}", expected=last_seq + 1, got=msg.seq)
    return msg
