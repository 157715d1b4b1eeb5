"""The audit trail (操作日志): account changes, review decisions, change requests, reads of whole files,
imports and exports — who, when, what, why. Queryable by users of the unit concerned and every unit above it,
as :data:`~provincial_node.rules.Operation.AUDIT_READ` allows.

Every event is appended to the hash chain (:mod:`.chain`) in the caller's transaction: the chain head's row is
updated first (its row lock serialises appends until the transaction ends), then the event is written with
its sequence number, the previous hash and its own. Nothing updates or deletes an event (the database refuses
it: append-only triggers).

Reading a whole file is an event (``file.read``); when one account reads more files in an hour than the
province allows (``TMIS_READ_ALERT_PER_HOUR``), an ``alert.read_volume`` event is written at the unit above
the account's unit, where that unit's administrators see it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from provincial_node.audit_trail import chain, search
from provincial_node.audit_trail.models import AuditChain, AuditEvent
from provincial_node.context import ProvinceContext

READ_WINDOW = search.READ_WINDOW


def record(
    ctx: ProvinceContext,
    action: str,
    target_type: str,
    target_id: object,
    unit_path: str,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Append an event to the chain in the caller's transaction; the actor is the context's (``None``: the
    node itself), the time the context's *now*."""
    session = ctx.session
    seq, prev = session.execute(
        update(AuditChain)
        .where(AuditChain.id == 1)
        .values(seq=AuditChain.seq + 1)
        .returning(AuditChain.seq, AuditChain.hash)
    ).one()
    event = AuditEvent(
        seq=seq,
        prev_hash=prev,
        at=ctx.now,
        actor_id=ctx.actor.account_id if ctx.actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        unit_path=unit_path,
        reason=reason,
        details=details,
    )
    event.hash = chain.hash_of(event)
    session.execute(update(AuditChain).where(AuditChain.id == 1).values(hash=event.hash))
    session.add(event)
    return event


def record_read(ctx: ProvinceContext, teacher_number: str, unit_path: str, **details: Any) -> AuditEvent:
    """A whole file was read: the event, and the alert to the unit above when the account's reads in the last
    hour pass the province's limit (one alert per account and hour)."""
    event = record(ctx, "file.read", "teacher", teacher_number, unit_path, **details)
    actor, session = ctx.actor, ctx.session
    if actor is None:
        return event
    session.flush()
    since = ctx.now - READ_WINDOW
    limit = ctx.settings.read_alert_per_hour
    reads = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.actor_id == actor.account_id, AuditEvent.action == "file.read", AuditEvent.at > since)
    )
    if reads > limit:
        already = session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "alert.read_volume",
                AuditEvent.target_id == str(actor.account_id),
                AuditEvent.at > since,
            )
        )
        if already is None:
            record(
                ctx.acting_as(None),
                "alert.read_volume",
                "account",
                actor.account_id,
                parent_path(actor.unit_path),
                username=actor.username,
                account_unit=actor.unit_path,
                reads=reads,
                limit=limit,
                window="1h",
            )
    return event


def parent_path(path: str) -> str:
    """The materialised path of the unit above (the root's own path for the root)."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[:-1]) + "/" if len(parts) > 1 else path


def query(
    ctx: ProvinceContext, *, action: str | None = None, since: dt.datetime | None = None, limit: int = 200
) -> list[AuditEvent]:
    """Events concerning the actor's unit or any unit below it, newest first (the first page of
    :func:`provincial_node.audit_trail.search.audit_events`)."""
    return search.audit_events(ctx, search.AuditFilter(action=action, since=since), limit=limit).rows


def verify_chain(session: Session, batch: int = 5000) -> chain.Verdict:
    """Check the whole audit chain (``tmis province audit verify``): read in ``seq`` order, in batches."""
    head = session.get(AuditChain, 1)

    def events() -> Any:
        last = 0
        while True:
            rows = list(
                session.scalars(select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch))
            )
            if not rows:
                return
            yield from rows
            last = rows[-1].seq
            session.expunge_all()

    return chain.verify(events(), head.seq if head else 0, head.hash if head else chain.GENESIS)
