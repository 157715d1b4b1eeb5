"""The inbox phase of a sync round (:mod:`.round`): messages from the national node pulled after the last one
stored, each verified (signature of a trusted message key, strictly in sequence) and stored, then applied in the
same transaction — a trust update here, anything else by the handler its area registered (:mod:`.inbox_handlers`),
so its effect happens exactly once — and acknowledged. A message pulled twice is recognised and skipped; one that
cannot be applied is kept with the reason and the inbox moves on."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import TmisError
from provincial_node.context import ProvinceRuntime
from provincial_node.sync.inbox_handlers import InboxDispatch
from provincial_node.sync.models import InboxReceived
from provincial_node.sync.trust import store_trust
from sync_protocol.dsse import encode_envelope, envelope_from_json
from sync_protocol.errors import AlreadyAcceptedError, ProtocolError
from sync_protocol.inbox import InboxMessage, accept_inbox_message
from sync_protocol.trust import TrustMetadata

logger = logging.getLogger(__name__)


class SyncClient(Protocol):
    """What the inbox phase uses of :class:`provincial_node.sync.round.SyncClient`."""

    factory: Any
    settings: Any
    dispatch: InboxDispatch
    runtime: ProvinceRuntime

    def call(self, method: str, path: str, body: bytes = b"") -> dict[str, Any]: ...

    def trust(self, s: Session) -> TrustMetadata: ...


class RoundStats(Protocol):
    messages: int


def pull(client: SyncClient, stats: RoundStats) -> None:
    """Pull the inbox after the last stored message, verify and store each in sequence, apply it, acknowledge."""
    while True:
        with client.factory() as s:
            last = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
        payload = client.call("GET", f"/api/v1/provinces/{client.settings.province}/inbox?after={last}")
        messages = payload.get("messages", [])
        if not messages:
            return
        fresh = 0
        for m in messages:
            data = encode_envelope(envelope_from_json(m))
            with client.factory.begin() as s:
                trust = client.trust(s)
                seen = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
                try:
                    msg = accept_inbox_message(
                        data,
                        trust=trust,
                        province=client.settings.province,
                        last_seq=seen,
                        stored_hash=lambda q, s=s: s.scalar(
                            select(InboxReceived.message_hash).where(InboxReceived.seq == q)
                        ),
                    )
                except AlreadyAcceptedError:
                    continue
                rec = InboxReceived(
                    seq=msg.seq, kind=msg.kind, message_hash=msg.message_hash, envelope=data, body=msg.body
                )
                s.add(rec)
                process(client, s, rec, msg)
                if rec.error is None:
                    rec.processed_at = utcnow()
            stats.messages += 1
            fresh += 1
        with client.factory() as s:
            top = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
        client.call(
            "POST", f"/api/v1/provinces/{client.settings.province}/inbox/ack", json.dumps({"seq": top}).encode()
        )
        if not fresh:
            return  # only messages processed before (a re-delivery): nothing more to pull


def process(client: SyncClient, s: Session, rec: InboxReceived, msg: InboxMessage) -> None:
    """Apply a message in the transaction that stores it (exactly once): a trust update here, anything else
    by the handler its area registered. If it cannot be applied, the message is kept with the reason
    (``sync status`` counts it) and the inbox moves on."""
    if msg.kind == "trust_update":
        store_trust(s, [encode_envelope(envelope_from_json(msg.body["envelope"]))])
        return
    handler = client.dispatch.handlers.get(msg.kind)
    if handler is None:
        rec.error = f"no handler for inbox message kind {msg.kind!r}"
        logger.error("inbox message %s: %s", msg.seq, rec.error)
        return
    try:
        with s.begin_nested():
            handler(client.runtime.context(s), msg)
    except (TmisError, ProtocolError, SQLAlchemyError) as e:
        rec.error = f"{type(e).__name__}: {e}"[:2000]
        logger.error("inbox message %s (%s) could not be applied: %s", msg.seq, msg.kind, e)
