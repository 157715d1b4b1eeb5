"""This province's side of sealed identities (sync_protocol.seal; docs/security.md): ID numbers leave the
province, and rest in its outbox, batches and messages, only sealed.

* The **seal key** (:class:`SealKey`) is created by the sync round the first time the national node's seal key is
  known (and again when the national node rotates its seal key), wrapped to the national seal public key (whose
  document a national message key signed) and registered with a signed request (:func:`ensure_registered`). The
  key itself is stored encrypted under the node data key.
* :func:`seal_value` seals a value under the newest registered seal key. Before the province has one (before its
  first round after enrolment) the value is held under the node data key instead (``enc1:…``, never in clear),
  and :func:`reseal_messages` / :func:`provincial_node.sync.outbox.reseal_backlog` turn that backlog into sealed
  values in one pass at the start of the next round, before anything is built or sent.
* :func:`open_value` opens what the national node sealed to this province (a transfer request's identity, a
  moved file) with any of the province's seal keys; the area then stores it under its own data key.

Fields (the associated data of each sealed value): ``JBXX.SFZJH`` in core records and in a moved file's record
groups, ``identity.doc_number`` in a transfer request, ``history.JBXX.SFZJH`` in the old/new values of a moved
file's history.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from common.db import utcnow
from common.protection import is_protected, keys_of
from provincial_node.sync.models import MessageStatus, SealKey, UpwardMessage
from sync_protocol.canonical import canonical_bytes, parse_canonical
from sync_protocol.dsse import encode_envelope, envelope_from_json
from sync_protocol.seal import (
    is_sealed,
    new_seal_key,
    open_sealed,
    seal,
    verify_seal_key_document,
    wrap_seal_key,
)
from sync_protocol.transfer import file_hash
from sync_protocol.trust import TrustMetadata

IDENTITY_FIELD = "JBXX.SFZJH"
TRANSFER_FIELD = "identity.doc_number"
HISTORY_FIELD = "history.JBXX.SFZJH"
Call = Callable[..., dict[str, Any]]


def _key_of(row: SealKey) -> bytes:
    return base64.b64decode(row.key)


_CACHE = "tmis_seal_key"


def current_key(session: Session) -> tuple[str, bytes] | None:
    """The newest registered seal key (kid, key), or None before the first registration. Read once per session
    (an import appends thousands of records in one transaction); a registration is its own transaction."""
    if _CACHE in session.info:
        return session.info[_CACHE]
    row = session.scalar(
        select(SealKey).where(SealKey.registered_at.is_not(None)).order_by(SealKey.registered_at.desc()).limit(1)
    )
    current = (row.kid, _key_of(row)) if row else None
    if current is not None:  # "none yet" is not kept: the same session may register one (enrolment)
        session.info[_CACHE] = current
    return current


def all_keys(session: Session) -> dict[str, bytes]:
    return {r.kid: _key_of(r) for r in session.scalars(select(SealKey))}


def seal_value(session: Session, value: str, *, teacher_number: str, field: str) -> str:
    """``value`` sealed under the current seal key, or held under the node data key before there is one."""
    if is_sealed(value):
        return value
    if is_protected(value):
        value = keys_of(session.get_bind().dialect).decrypt(value)
    current = current_key(session)
    if current is None:
        return keys_of(session.get_bind().dialect).encrypt(value)
    return seal(current[1], current[0], value, teacher_number=teacher_number, field=field)


def open_value(session: Session, value: Any, *, teacher_number: str, field: str) -> Any:
    """The clear value of a sealed one (with this province's seal keys) or of one held under the data key; a
    clear value (from a node before sealed identities) as it is. Raises SealError when a seal does not open."""
    if is_sealed(value):
        return open_sealed(all_keys(session), value, teacher_number=teacher_number, field=field)
    if is_protected(value):
        return keys_of(session.get_bind().dialect).decrypt(value)
    return value


def seal_core_fields(session: Session, fields: dict[str, Any], teacher_number: str) -> dict[str, Any]:
    """A core record's fields with JBXX.SFZJH sealed (or held under the data key before there is a seal key)."""
    basic = fields.get("JBXX")
    if not isinstance(basic, dict) or not isinstance(basic.get("SFZJH"), str) or is_sealed(basic["SFZJH"]):
        return fields
    number = seal_value(session, basic["SFZJH"], teacher_number=teacher_number, field=IDENTITY_FIELD)
    return {**fields, "JBXX": {**basic, "SFZJH": number}}


def _map_file(file: dict[str, Any], teacher_number: str, fn: Callable[..., Any]) -> dict[str, Any]:
    """A moved file ``{"groups", "history"}`` with ``fn`` applied to its ID numbers (JBXX.SFZJH and the old/new
    values of history changes of that field)."""
    groups = dict(file.get("groups") or {})
    basic = groups.get("JBXX")
    if isinstance(basic, dict) and isinstance(basic.get("SFZJH"), str):
        groups["JBXX"] = {**basic, "SFZJH": fn(basic["SFZJH"], teacher_number=teacher_number, field=IDENTITY_FIELD)}
    history = []
    for h in file.get("history") or []:
        changes = h.get("changes") if isinstance(h, dict) else None
        if isinstance(changes, list):
            new = []
            for c in changes:
                if isinstance(c, dict) and (c.get("group"), c.get("field")) == ("JBXX", "SFZJH"):
                    c = {
                        **c,
                        **{
                            k: fn(c[k], teacher_number=teacher_number, field=HISTORY_FIELD)
                            for k in ("old", "new")
                            if isinstance(c.get(k), str)
                        },
                    }
                new.append(c)
            h = {**h, "changes": new}
        history.append(h)
    return {**file, "groups": groups, "history": history}


def seal_file(session: Session, file: dict[str, Any], teacher_number: str) -> dict[str, Any]:
    return _map_file(file, teacher_number, lambda v, **kw: seal_value(session, v, **kw))


def open_file(session: Session, file: dict[str, Any], teacher_number: str) -> dict[str, Any]:
    return _map_file(file, teacher_number, lambda v, **kw: open_value(session, v, **kw))


# -------------------------------------------------------------------------------------------- the round


def ensure_registered(
    factory: sessionmaker[Session], call: Call, province: str, trust: Callable[[Session], TrustMetadata]
) -> str | None:
    """Make sure a seal key wrapped to the national node's current seal key is registered there; returns the kid
    registered now (None when nothing was to do). The national node's seal key document must be signed by a
    message key of the trust in force."""
    answer = call("GET", f"/api/v1/provinces/{province}/seal-key")
    with factory.begin() as s:
        doc = verify_seal_key_document(encode_envelope(envelope_from_json(answer["document"])), trust(s).message_keys)
        row = s.scalar(select(SealKey).where(SealKey.recipient == doc.kid).order_by(SealKey.created_at.desc()).limit(1))
        if row is not None and row.registered_at is not None and row.kid in answer.get("registered", []):
            return None
        if row is None:
            key = new_seal_key()
            kid = f"{province}-{secrets.token_hex(6)}"
            wrapped = wrap_seal_key(key, province=province, kid=kid, recipient=doc.public, recipient_kid=doc.kid)
            row = SealKey(kid=kid, key=base64.b64encode(key).decode(), recipient=doc.kid, wrapped=wrapped)
            s.add(row)
        kid, wrapped = row.kid, dict(row.wrapped)
    call("POST", f"/api/v1/provinces/{province}/seal-keys", json.dumps(wrapped).encode())
    with factory.begin() as s:
        s.get(SealKey, kid).registered_at = utcnow()
    return kid


def _reseal_transfer_body(session: Session, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind == "transfer_request":
        ident = body["identity"]
        number = seal_value(session, ident["doc_number"], teacher_number=body["teacher_number"], field=TRANSFER_FIELD)
        return {**body, "identity": {**ident, "doc_number": number}}
    if kind == "transfer_file":
        file = seal_file(session, body["file"], body["teacher_number"])
        return {**body, "file": file, "file_hash": file_hash(file)}
    return body


def reseal_messages(session: Session) -> int:
    """Pending upward messages whose ID numbers are held under the data key (queued before the seal key was
    registered): their payload sealed and its hash computed again (nothing was sent of them yet)."""
    if current_key(session) is None:
        return 0
    done = 0
    for m in session.scalars(
        select(UpwardMessage).where(
            UpwardMessage.status == MessageStatus.PENDING,
            UpwardMessage.kind.in_(("transfer_request", "transfer_file")),
        )
    ):
        if b'"enc1:' not in m.payload:
            continue
        obj = parse_canonical(m.payload)
        obj["body"] = _reseal_transfer_body(session, m.kind, obj["body"])
        m.payload = canonical_bytes(obj)
        m.message_hash = hashlib.sha256(m.payload).hexdigest()
        done += 1
    return done
