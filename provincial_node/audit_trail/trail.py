"""The audit trail (操作日志): account changes, review decisions, change requests, exports — who, when,
what, why. Queryable by users of the unit concerned and every unit above it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from provincial_node.audit_trail.models import AuditEvent
from provincial_node.context import ProvinceContext, Role


def record(
    ctx: ProvinceContext,
    action: str,
    target_type: str,
    target_id: object,
    unit_path: str,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Record an event in the caller's transaction; the actor is the context's (``None``: the node itself)."""
    event = AuditEvent(
        actor_id=ctx.actor.account_id if ctx.actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        unit_path=unit_path,
        reason=reason,
        details=details,
    )
    ctx.session.add(event)
    return event


def query(
    ctx: ProvinceContext,
    *,
    action: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events concerning the actor's unit or any unit below it, newest first."""
    actor = ctx.user
    actor.require(Role.SYSADMIN, Role.INFOADMIN, Role.QUERY)
    stmt = select(AuditEvent).where(AuditEvent.unit_path.startswith(actor.unit_path, autoescape=True))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    return list(ctx.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(min(limit, 1000)).offset(offset)))
