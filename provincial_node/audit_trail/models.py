"""The audit trail (操作日志) and the login log (登录日志) tables.

Both are append-only: the migrations install triggers that refuse UPDATE and DELETE on them (on SQLite and
PostgreSQL). The audit trail is also hash-chained: every event carries its sequence number, the hash of the
event before it and its own hash over both (:mod:`provincial_node.audit_trail.chain`), and ``audit_chain`` holds
the head, so an edited, deleted or truncated entry is detected by ``tmis province audit verify``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from provincial_node.db import Base


class AuditEvent(Base):
    """Who did what, when, to what, and why: account changes, review decisions, reads, exports (有据可查)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_actor_action_at", "actor_id", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # gapless position in the chain, from 1
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    unit_path: Mapped[str] = mapped_column(String(400), index=True)  # the unit concerned: scopes queries
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChain(Base):
    """The head of the audit chain (one row, id 1): the last sequence number and its hash. Appending updates it
    under its row lock, so appends are serialised and the chain never forks."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class LoginEvent(Base):
    """One login attempt (登录日志): who (as typed, and the account when there is one), from where, when, and
    the outcome. Failed attempts are kept although the login request fails."""

    __tablename__ = "login_event"
    __table_args__ = (
        Index("ix_login_event_username_at", "username", "at"),
        Index("ix_login_event_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # api | web | cli
    outcome: Mapped[str] = mapped_column(String(24))  # LoginOutcome
    unit_path: Mapped[str] = mapped_column(String(400), index=True)  # the account's unit (the root if unknown)
