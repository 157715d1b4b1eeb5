"""Routing messages down to provinces: signed, gapless per province, pulled with a cursor, acknowledged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import FieldError, ValidationError
from national_node.inbox.models import InboxMessage
from national_node.keys import NodeKeys
from national_node.provinces import provinces
from sync_protocol.inbox import build_inbox_message

MAX_PULL = 500


def route(
    session: Session, keys: NodeKeys, province: str, kind: str, body: dict[str, Any], now: dt.datetime | None = None
) -> InboxMessage:
    """Sign and store the province's next message (its row is locked: sequences stay gapless)."""
    row = provinces.lock(session, province)
    seq = row.inbox_seq + 1
    envelope = build_inbox_message(
        province=province, seq=seq, kind=kind, created_at=now or utcnow(), body=body, signer=keys.messages
    )
    row.inbox_seq = seq
    msg = InboxMessage(province_code=province, seq=seq, kind=kind, envelope=envelope)
    session.add(msg)
    return msg


def pull(session: Session, province: str, after: int, limit: int = 100) -> list[InboxMessage]:
    if after < 0 or not 1 <= limit <= MAX_PULL:
        raise ValidationError(
            "after must be ≥ 0 and limit between 1 and 500",
            [
                FieldError(
                    "inbox", "limit", "limit 应在 1 到 500 之间，after 不小于 0", "1 ≤ limit ≤ 500, after ≥ 0", limit
                )
            ],
        )
    return list(
        session.scalars(
            select(InboxMessage)
            .where(InboxMessage.province_code == province, InboxMessage.seq > after)
            .order_by(InboxMessage.seq)
            .limit(limit)
        )
    )


def ack(session: Session, province: str, seq: int) -> int:
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
