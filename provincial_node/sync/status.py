"""What operators see of the sync: backlog, rounds, parked records (``tmis province sync …``, the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.errors import NotFoundError
from provincial_node.sync.models import (
    BatchStatus,
    InboxReceived,
    MessageStatus,
    OutboxEntry,
    ParkedRecord,
    SyncBatch,
    SyncRound,
    TrustDoc,
    UpwardMessage,
)


def last_rounds(session: Session, limit: int = 20) -> list[SyncRound]:
    return list(session.scalars(select(SyncRound).order_by(SyncRound.id.desc()).limit(limit)))


def status(session: Session) -> dict[str, Any]:
    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where))

    last = session.scalar(
        select(SyncBatch).where(SyncBatch.status == BatchStatus.ACCEPTED).order_by(SyncBatch.seq.desc()).limit(1)
    )
    return {
        "outbox_pending": count(OutboxEntry, OutboxEntry.batch_seq.is_(None)),
        "transfer_messages_pending": count(UpwardMessage, UpwardMessage.status == MessageStatus.PENDING),
        "inbox_unprocessed": count(InboxReceived, InboxReceived.error.is_not(None)),
        "batches_unsent": count(SyncBatch, SyncBatch.status != BatchStatus.ACCEPTED),
        "last_accepted_seq": last.seq if last else 0,
        "parked_records": count(ParkedRecord, ParkedRecord.resolved_at.is_(None)),
        "trust_version": session.scalar(select(func.max(TrustDoc.version))),
        "inbox_received": count(InboxReceived),
    }


def open_parked(session: Session) -> list[ParkedRecord]:
    """Records the national node refused and nobody has resolved yet."""
    stmt = select(ParkedRecord).where(ParkedRecord.resolved_at.is_(None)).order_by(ParkedRecord.id)
    return list(session.scalars(stmt))


def resolve_parked(session: Session, parked_id: int, now: Any) -> ParkedRecord:
    row = session.get(ParkedRecord, parked_id)
    if row is None:
        raise NotFoundError(f"no parked record {parked_id}", details={"parked_id": parked_id})
    row.resolved_at = now
    return row


def parked_outcome(session: Session, row: ParkedRecord) -> str:
    """What became of a parked record sent again (``sync reload --parked``): accepted, refused again, or waiting."""
    if row.resent_version is None:
        return ""
    again = session.scalar(
        select(ParkedRecord).where(ParkedRecord.version == row.resent_version, ParkedRecord.id != row.id).limit(1)
    )
    if again is not None:
        return f"resent as version {row.resent_version}: refused again ({again.reason})"
    done = session.scalar(
        select(func.coalesce(func.max(SyncBatch.version_to), 0)).where(SyncBatch.status == BatchStatus.ACCEPTED)
    )
    if row.resent_version <= done:
        return f"resent as version {row.resent_version}: accepted"
    return f"resent as version {row.resent_version}: waiting for the next round"
