"""Routing messages down to provinces: signed, gapless per province, pulled with a cursor, acknowledged.

Two steps, so that no transaction ever holds the rows of two provinces (the lock order in
``docs/national-node-and-sync.md``): :func:`route` records the message for its destination without locking
anything of the destination (an intake of province A that finds a duplicate in province B, a transfer message
from A to B, a trust update to every province); :func:`sequence` later gives the destination's routed messages
their gapless sequence numbers and signs them, under that province's own row lock — when the province pulls,
and for every province when the audit bundle is exported."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import FieldError, ValidationError
from national_node.inbox.models import InboxMessage, RoutedMessage
from national_node.keys import NodeKeys
from national_node.provinces import provinces
from sync_protocol.inbox import build_inbox_message

MAX_PULL = 500


def route(
    session: Session, keys: NodeKeys, province: str, kind: str, body: dict[str, Any], now: dt.datetime | None = None
) -> RoutedMessage:
    """Record the province's next message; it is sequenced and signed when the province pulls (:func:`sequence`).

    ``keys`` is kept for the callers' symmetry with the signing step; routing itself locks and signs nothing."""
    del keys
    msg = RoutedMessage(province_code=province, kind=kind, body=body, created_at=now or utcnow())
    session.add(msg)
    session.flush()  # the id orders the province's routed messages
    return msg


def sequence(session: Session, keys: NodeKeys, province: str) -> int:
    """Give the province's routed messages their sequence numbers and signatures, in routing order, under the
    province's row lock (sequences stay gapless); returns the province's last sequence number."""
    routed = session.scalars(
        select(RoutedMessage).where(RoutedMessage.province_code == province).order_by(RoutedMessage.id).limit(1)
    ).first()
    if routed is None:  # the common case: nothing waiting, no lock taken
        return provinces.get(session, province).inbox_seq
    row = provinces.lock(session, province, fresh=True)
    waiting = session.scalars(
        select(RoutedMessage).where(RoutedMessage.province_code == province).order_by(RoutedMessage.id)
    ).all()
    seq = row.inbox_seq
    for m in waiting:
        seq += 1
        envelope = build_inbox_message(
            province=province, seq=seq, kind=m.kind, created_at=m.created_at, body=m.body, signer=keys.messages
        )
        msg = InboxMessage(province_code=province, seq=seq, kind=m.kind, envelope=envelope, created_at=m.created_at)
        session.add(msg)
        session.delete(m)
    row.inbox_seq = seq
    session.flush()
    return seq


def sequence_all(session: Session, keys: NodeKeys) -> None:
    """Sequence every province's routed messages, one province at a time in code order (the export)."""
    codes = session.scalars(select(RoutedMessage.province_code).distinct().order_by(RoutedMessage.province_code))
    for code in list(codes):
        sequence(session, keys, code)


def pull(session: Session, keys: NodeKeys, province: str, after: int, limit: int = 100) -> list[InboxMessage]:
    """The province's messages after ``after`` (its routed messages sequenced first)."""
    if after < 0 or not 1 <= limit <= MAX_PULL:
        raise ValidationError(
            "after must be ≥ 0 and limit between 1 and 500",
            [
                FieldError(
                    "inbox", "limit", "limit 应在 1 到 500 之间，after 不小于 0", "1 ≤ limit ≤ 500, after ≥ 0", limit
                )
            ],
        )
    sequence(session, keys, province)
    return list(
        session.scalars(
            select(InboxMessage)
            .where(InboxMessage.province_code == province, InboxMessage.seq > after)
            .order_by(InboxMessage.seq)
            .limit(limit)
        )
    )


def ack(session: Session, keys: NodeKeys, province: str, seq: int) -> int:
    """Acknowledge the province's messages up to ``seq`` (routed messages count as sent: sequenced first)."""
    sequence(session, keys, province)
    row = provinces.get(session, province)
    if seq > row.inbox_seq or seq < 0:
        raise ValidationError(
            f"cannot acknowledge {seq}: only {row.inbox_seq} messages were sent",
            [FieldError("inbox", "seq", "确认序号超出已发送的消息", f"at most {row.inbox_seq}", seq)],
        )
    row.inbox_acked = max(row.inbox_acked, seq)
    return row.inbox_acked


def all_messages(session: Session) -> list[InboxMessage]:
    """Every message routed, by province and sequence (the audit bundle)."""
    return list(session.scalars(select(InboxMessage).order_by(InboxMessage.province_code, InboxMessage.seq)))
