"""What is routed down to a province (signed, gapless per province).

A message is first *routed* (:class:`RoutedMessage`: destination, kind, body — no lock on the destination) in the
transaction that causes it, and *sequenced* (:class:`InboxMessage`: its gapless sequence number and signed
envelope) under the destination province's own row lock when that province pulls, or when the audit bundle is
exported. So a transaction never holds two provinces' rows (see ``docs/national-node-and-sync.md``, lock order)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from national_node.db import Base


class InboxMessage(Base):
    __tablename__ = "inbox_message"
    __table_args__ = (UniqueConstraint("province_code", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RoutedMessage(Base):
    """A message routed to a province and not yet sequenced (it becomes an :class:`InboxMessage`)."""

    __tablename__ = "routed_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
