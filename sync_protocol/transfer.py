"""Cross-province transfers (跨省调动): the province-signed messages that travel *up* to the national node and
the state machine every party (national broker, provinces, auditor) applies to them.

A **transfer message** is a DSSE envelope (payload type ``application/vnd.tmis.transfer-message.v1+json``)
signed by a key of the sending province in the trust version in force. Payload::

    {"protocol": "tmis-sync/1", "type": "transfer", "province": "11", "kind": "transfer_request",
     "created_at": "2026-11-22T08:00:00Z", "body": {...}}

``message_hash`` = hex SHA-256 of the payload: the national node accepts a message once, answers an
identical resend with the stored receipt, and logs every accepted message as a ``message`` leaf.

Two flows (``kind`` of the request). Steps before the request are the starting province's own business;
the protocol carries the two steps decided in the other province, then the file:

====================  =========  ==========================================  ===============================
flow                  starter    remote steps (decided by)                   then
====================  =========  ==========================================  ===============================
``transfer``          to (B)     ``sending_school``, ``sending_bureau`` (A)  A sends the file → completion
``rotation_transfer`` from (A)   ``receiving_school``, ``receiving_bureau``  A sends the file → completion
                                 (B)
====================  =========  ==========================================  ===============================

Upward kinds and bodies (every key required, no others):

* ``transfer_request`` (by the starter): :data:`REQUEST_KEYS` — forwarded to the other province unchanged except
  ``identity.doc_number``, which the starter seals (:mod:`sync_protocol.seal`, field ``identity.doc_number``) and
  the national node seals again to the other province;
* ``transfer_answer`` (by the province deciding ``step``): transfer_id, step, decision (approve | reject),
  reason (required for reject), answered_at;
* ``transfer_withdrawal`` (by the starter, while the next step is not the last): transfer_id, reason,
  withdrawn_at;
* ``transfer_file`` (by A, after the last approval): transfer_id, teacher_number, file
  ``{"groups": {...}, "history": [...]}``, file_hash (hex SHA-256 of the canonical ``file``), sent_at. The file's
  ID numbers are sealed: ``groups.JBXX.SFZJH`` (field ``JBXX.SFZJH``) and the old/new values of history changes
  of that field (field ``history.JBXX.SFZJH``); the completion routed to B carries them sealed again to B, with
  ``file_hash`` of the file as routed.

States: ``open`` → (every remote step approved) ``awaiting_file`` → ``completed``; ``open`` → ``rejected``
| ``withdrawn`` | ``expired`` (an open request past ``expires_at``). A request whose approvals are complete
no longer expires: only the automatic file step remains.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from sync_protocol import PROTOCOL
from sync_protocol._schema import exact_keys, hex_hash, one_of, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical
from sync_protocol.dsse import (
    TRANSFER_PAYLOAD_TYPE,
    encode_envelope,
    parse_canonical_envelope,
    sign_envelope,
    verify_envelope,
)
from sync_protocol.errors import LimitExceededError, MalformedError, ProtocolError
from sync_protocol.identifiers import check_province, check_teacher_number
from sync_protocol.keys import Signer
from sync_protocol.seal import is_sealed, sealed_kid
from sync_protocol.trust import TrustMetadata

MAX_TRANSFER_MESSAGE_BYTES = 1024 * 1024
TRANSFER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}\Z")
DOC_TYPE = re.compile(r"^[0-9A-Z]\Z")
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")

FLOWS: dict[str, dict[str, Any]] = {
    "transfer": {"starter": "to", "steps": ("sending_school", "sending_bureau"), "decider": "from"},
    "rotation_transfer": {"starter": "from", "steps": ("receiving_school", "receiving_bureau"), "decider": "to"},
}
STEPS = frozenset(s for f in FLOWS.values() for s in f["steps"])
REQUEST_KEYS = frozenset(
    {
        "transfer_id",
        "kind",
        "teacher_number",
        "identity",
        "from_province",
        "to_province",
        "from_school",
        "receiving_school",
        "rotation",
        "reason",
        "requested_at",
        "expires_at",
    }
)
UPWARD_KINDS = frozenset({"transfer_request", "transfer_answer", "transfer_withdrawal", "transfer_file"})


class State(enum.StrEnum):
    """States of a cross-province transfer at the national node."""

    OPEN = "open"
    AWAITING_FILE = "awaiting_file"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


OPEN, AWAITING_FILE, COMPLETED = State.OPEN, State.AWAITING_FILE, State.COMPLETED
CLOSED = frozenset({State.REJECTED, State.WITHDRAWN, State.EXPIRED, State.COMPLETED})
IN_FLIGHT = (State.OPEN, State.AWAITING_FILE)


class TransferStateError(ProtocolError):
    """A message that does not fit the transfer's state (wrong sender, step, order; closed or expired)."""

    code = "protocol_transfer_state"
    http_status = 409


class TransferOwnerError(ProtocolError):
    """The national store says another province holds the teacher named in the request or file."""

    code = "protocol_transfer_owner"
    http_status = 409


# ------------------------------------------------------------------------------------------------ bodies


def check_identity(obj: Any) -> dict:
    exact_keys(obj, {"doc_type", "doc_number"}, "identity")
    string(obj, "doc_type", "identity", max_len=1, pattern=DOC_TYPE)
    if is_sealed(obj["doc_number"]):  # sealed to a seal key (sync_protocol.seal): the format is checked here
        sealed_kid(obj["doc_number"], "identity.doc_number")
    else:  # a node from before sealed identities
        string(obj, "doc_number", "identity", max_len=30)
    return obj


def _school(obj: Any, what: str) -> dict:
    exact_keys(obj, {"code", "name"}, what)
    string(obj, "code", what, max_len=40)
    string(obj, "name", what, max_len=200)
    return obj


def check_request(b: Any) -> dict:
    exact_keys(b, set(REQUEST_KEYS), "transfer_request")
    string(b, "transfer_id", "transfer_request", pattern=TRANSFER_ID)
    kind = one_of(b, "kind", "transfer_request", set(FLOWS))
    check_teacher_number(b["teacher_number"])
    check_identity(b["identity"])
    if check_province(b["from_province"]) == check_province(b["to_province"]):
        raise MalformedError("a cross-province transfer has two different provinces")
    _school(b["receiving_school"], "transfer_request.receiving_school")
    if b["from_school"] is not None:
        _school(b["from_school"], "transfer_request.from_school")
    string(b, "reason", "transfer_request", max_len=500)
    if kind == "rotation_transfer":
        rot = exact_keys(b["rotation"], {"type", "start_month", "end_month"}, "transfer_request.rotation")
        string(rot, "type", "transfer_request.rotation", max_len=2)
        string(rot, "start_month", "transfer_request.rotation", pattern=_MONTH)
        string(rot, "end_month", "transfer_request.rotation", pattern=_MONTH, nullable=True)
        if b["from_school"] is None:
            raise MalformedError("a rotation names the sending school (from_school)")
    elif b["rotation"] is not None:
        raise MalformedError("transfer_request.rotation is only set for rotation_transfer")
    if time(b, "expires_at", "transfer_request") <= time(b, "requested_at", "transfer_request"):
        raise MalformedError("transfer_request.expires_at must be after requested_at")
    return b


def check_answer(b: Any) -> dict:
    exact_keys(b, {"transfer_id", "step", "decision", "reason", "answered_at"}, "transfer_answer")
    string(b, "transfer_id", "transfer_answer", pattern=TRANSFER_ID)
    one_of(b, "step", "transfer_answer", set(STEPS))
    decision = one_of(b, "decision", "transfer_answer", {"approve", "reject"})
    reason = string(b, "reason", "transfer_answer", max_len=500, nullable=True)
    if decision == "reject" and not reason:
        raise MalformedError("a rejection carries a reason")
    time(b, "answered_at", "transfer_answer")
    return b


def _withdrawal(b: Any) -> dict:
    exact_keys(b, {"transfer_id", "reason", "withdrawn_at"}, "transfer_withdrawal")
    string(b, "transfer_id", "transfer_withdrawal", pattern=TRANSFER_ID)
    string(b, "reason", "transfer_withdrawal", max_len=500)
    time(b, "withdrawn_at", "transfer_withdrawal")
    return b


def file_hash(file: dict) -> str:
    return hashlib.sha256(canonical_bytes(file)).hexdigest()


def check_file(file: Any, what: str = "file") -> dict:
    exact_keys(file, {"groups", "history"}, what)
    if not isinstance(file["groups"], dict) or not file["groups"]:
        raise MalformedError(f"{what}.groups must be a non-empty object of record groups")
    if not isinstance(file["history"], list) or not all(isinstance(h, dict) for h in file["history"]):
        raise MalformedError(f"{what}.history must be a list of objects")
    return file


def _file(b: Any) -> dict:
    exact_keys(b, {"transfer_id", "teacher_number", "file", "file_hash", "sent_at"}, "transfer_file")
    string(b, "transfer_id", "transfer_file", pattern=TRANSFER_ID)
    check_teacher_number(b["teacher_number"])
    check_file(b["file"], "transfer_file.file")
    if hex_hash(b, "file_hash", "transfer_file") != file_hash(b["file"]):
        raise MalformedError("transfer_file.file_hash is not the SHA-256 of the canonical file")
    time(b, "sent_at", "transfer_file")
    return b


UPWARD_CHECKS = {
    "transfer_request": check_request,
    "transfer_answer": check_answer,
    "transfer_withdrawal": _withdrawal,
    "transfer_file": _file,
}


# --------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class TransferMessage:
    province: str  # the signing (sending) province
    kind: str
    created_at: dt.datetime
    body: dict
    message_hash: str  # hex SHA-256 of the payload
    payload: bytes

    @property
    def transfer_id(self) -> str:
        return self.body["transfer_id"]


def transfer_payload(*, province: str, kind: str, created_at: dt.datetime, body: dict) -> bytes:
    """The canonical, unsigned payload (stored by a province until sent; Ed25519 signs it the same each time)."""
    payload = canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "transfer",
            "province": province,
            "kind": kind,
            "created_at": format_time(created_at),
            "body": body,
        }
    )
    parse_transfer_payload(payload)
    return payload


def parse_transfer_payload(payload: bytes) -> TransferMessage:
    if len(payload) > MAX_TRANSFER_MESSAGE_BYTES:
        raise LimitExceededError(f"transfer message larger than {MAX_TRANSFER_MESSAGE_BYTES} bytes", size=len(payload))
    obj = parse_canonical(payload)
    exact_keys(obj, {"protocol", "type", "province", "kind", "created_at", "body"}, "transfer message")
    if obj["protocol"] != PROTOCOL or obj["type"] != "transfer":
        raise MalformedError(f"not a {PROTOCOL} transfer message")
    kind = one_of(obj, "kind", "transfer message", set(UPWARD_KINDS))
    UPWARD_CHECKS[kind](obj["body"])
    return TransferMessage(
        check_province(obj["province"]),
        kind,
        time(obj, "created_at", "transfer message"),
        obj["body"],
        hashlib.sha256(payload).hexdigest(),
        payload,
    )


def sign_transfer_message(payload: bytes, signer: Signer) -> bytes:
    return encode_envelope(sign_envelope(payload, TRANSFER_PAYLOAD_TYPE, [signer]))


def verify_transfer_message(data: bytes, trust: TrustMetadata, province: str) -> TransferMessage:
    """Signature by ``province``'s keys (threshold of its key set), then schema; ``province`` must be the signer."""
    if len(data) > MAX_TRANSFER_MESSAGE_BYTES + 4096:
        raise LimitExceededError("transfer message too large", size=len(data))
    env = parse_canonical_envelope(data)
    ks = trust.province_keys(province)
    verify_envelope(env, TRANSFER_PAYLOAD_TYPE, ks.keys, ks.threshold)
    msg = parse_transfer_payload(env.payload)
    if msg.province != province:
        raise MalformedError("the message names another sending province", named=msg.province, signer=province)
    return msg


# ------------------------------------------------------------------------------------------ state machine


@dataclass(frozen=True)
class TransferState:
    transfer_id: str
    kind: str
    teacher_number: str
    from_province: str
    to_province: str
    expires_at: dt.datetime
    state: str
    next_step: str | None

    @property
    def starter(self) -> str:
        return self.from_province if FLOWS[self.kind]["starter"] == "from" else self.to_province

    @property
    def decider(self) -> str:
        return self.from_province if FLOWS[self.kind]["decider"] == "from" else self.to_province

    def other(self, province: str) -> str:
        return self.to_province if province == self.from_province else self.from_province


def start(msg: TransferMessage) -> TransferState:
    """The state a ``transfer_request`` opens; the sender must be the flow's starter."""
    if msg.kind != "transfer_request":
        raise TransferStateError("no such transfer", transfer_id=msg.transfer_id)
    b = msg.body
    flow = FLOWS[b["kind"]]
    state = TransferState(
        b["transfer_id"],
        b["kind"],
        b["teacher_number"],
        b["from_province"],
        b["to_province"],
        time(b, "expires_at", "transfer_request"),
        OPEN,
        flow["steps"][0],
    )
    if msg.province != state.starter:
        raise TransferStateError(f"a {b['kind']} is requested by province {state.starter}", sender=msg.province)
    return state


def expired(state: TransferState, now: dt.datetime) -> bool:
    return state.state == OPEN and now > state.expires_at


def advance(state: TransferState, msg: TransferMessage, now: dt.datetime) -> TransferState:
    """The state after ``msg`` (not a request) at time ``now``; raises TransferStateError if it does not fit.

    The caller expires the transfer first when :func:`expired` says so (and refuses the message)."""
    if msg.transfer_id != state.transfer_id:
        raise TransferStateError("message for another transfer")
    if msg.province not in (state.from_province, state.to_province):
        raise TransferStateError("the sender is not a party to this transfer", sender=msg.province)
    if msg.kind == "transfer_request":
        raise TransferStateError("the transfer was already requested", transfer_id=state.transfer_id)
    if state.state in CLOSED:
        raise TransferStateError(f"the transfer is {state.state}", state=state.state)
    if expired(state, now):
        raise TransferStateError("the transfer has expired", expires_at=format_time(state.expires_at))
    steps = FLOWS[state.kind]["steps"]
    b = msg.body
    if msg.kind == "transfer_answer":
        if state.state != OPEN or b["step"] != state.next_step:
            raise TransferStateError(
                f"the transfer waits for {state.next_step or state.state}, not {b['step']}",
                next_step=state.next_step or "",
                step=b["step"],
            )
        if msg.province != state.decider:
            raise TransferStateError(f"step {b['step']} is decided by province {state.decider}", sender=msg.province)
        if b["decision"] == "reject":
            return replace(state, state=State.REJECTED, next_step=None)
        i = steps.index(b["step"])
        if i + 1 < len(steps):
            return replace(state, next_step=steps[i + 1])
        return replace(state, state=AWAITING_FILE, next_step=None)
    if msg.kind == "transfer_withdrawal":
        if msg.province != state.starter:
            raise TransferStateError("only the starting province withdraws", sender=msg.province)
        if state.state != OPEN or state.next_step == steps[-1]:
            raise TransferStateError(
                "the request waits for its last step and can no longer be withdrawn",
                next_step=state.next_step or state.state,
            )
        return replace(state, state=State.WITHDRAWN, next_step=None)
    # transfer_file
    if msg.province != state.from_province:
        raise TransferStateError("the file is sent by the province that holds it", sender=msg.province)
    if state.state != AWAITING_FILE:
        raise TransferStateError("the file is sent after the last approval", state=state.state)
    if b["teacher_number"] != state.teacher_number:
        raise TransferStateError("the file is of another teacher", teacher_number=b["teacher_number"])
    return replace(state, state=COMPLETED, next_step=None)
