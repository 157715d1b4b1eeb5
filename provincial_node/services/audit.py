"""The audit trail (操作日志): account changes, review decisions, change requests, exports — who, when,
what, why. Queryable by users of the unit concerned and every unit above it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provincial_node.models import AuditEvent
from provincial_node.services.access import Actor


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    target_type: str,
    target_id: object,
    unit_path: str,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.account_id if actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        unit_path=unit_path,
        reason=reason,
        details=details,
    )
    session.add(event)
    return event


def query(
    session: Session,
    actor: Actor,
    *,
    action: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events concerning the actor's unit or any unit below it, newest first."""
    actor.require("sysadmin", "infoadmin", "query")
    stmt = select(AuditEvent).where(AuditEvent.unit_path.startswith(actor.unit_path, autoescape=True))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(min(limit, 1000)).offset(offset)))
