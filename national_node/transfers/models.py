"""Cross-province transfers the national node brokers, and every province-signed transfer message accepted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from national_node.db import Base


class Transfer(Base):
    """A cross-province transfer or rotation the national node brokers (sync_protocol.transfer state machine).

    ``request`` is the signed request body; ``steps`` every accepted answer, withdrawal, expiry, file and
    completion in order (what, by which province, when). ``state``: open | awaiting_file | completed |
    rejected | withdrawn | expired."""

    __tablename__ = "transfer"

    transfer_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    teacher_number: Mapped[str] = mapped_column(String(13), index=True)
    from_province: Mapped[str] = mapped_column(ForeignKey("province.code"))
    to_province: Mapped[str] = mapped_column(ForeignKey("province.code"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    next_step: Mapped[str | None] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    requested_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    file_hash: Mapped[str | None] = mapped_column(String(64))


class TransferMessage(Base):
    """Every province-signed transfer message accepted (content-addressed; logged as a message leaf)."""

    __tablename__ = "transfer_message"

    message_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(80), index=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"))
    kind: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_index: Mapped[int] = mapped_column(Integer)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
