"""The transactional outbox: what the next sync round sends to the national node.

* Entries are appended **in the same transaction** as the change that causes them, so a change and its
  outbox entry commit or roll back together.
* ``version`` comes from a counter row incremented with ``UPDATE … RETURNING``: on PostgreSQL the row
  lock serialises concurrent writers until they commit, on SQLite the database write lock does; a rolled
  back transaction gives its number back. Versions are therefore gapless per province.
* Only effective (reviewed) data enters: the record holds the core fields of the file's effective ``data``
  and lists every filled non-core field (catalogue or custom) as withheld.
* The identity (JBXX.SFZJH) is sealed (:mod:`.sealing`) before the record is built, so the stored record holds
  only the sealed form; before the province has a seal key it is held under the node data key and sealed by
  :func:`provincial_node.sync.sealing.reseal_outbox` at the start of the next round.
* :func:`record_change` decides whether a new effective version is a core change; the teacher-file area's
  one effective-write path calls it, nothing else appends.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from provincial_node.context import ProvinceContext
from provincial_node.db import next_value
from provincial_node.sync import sealing
from provincial_node.sync.models import OutboxEntry, SyncBatch
from sync_protocol.records import CoreRecord, RecordOp, record_from_json


class FileLike(Protocol):
    """What the outbox reads of a teacher file (the teacher-file area's ``Teacher``)."""

    id: int
    teacher_number: str
    data: dict[str, Any]


def _filled(v: Any) -> bool:
    return v not in (None, "", [])


def core_view(catalogue: Catalogue, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(core fields of ``data`` by group, sorted list of filled non-core ``GROUP.FIELD`` codes)."""
    core: dict[str, Any] = {}
    withheld: set[str] = set()
    for gcode, content in data.items():
        group = catalogue.groups.get(gcode)
        if group is None:
            continue
        core_codes = {f.code for f in group.fields if f.core}
        rows = content if isinstance(content, list) else [content]
        projected = []
        for row in rows:
            projected.append({k: v for k, v in row.items() if k in core_codes and _filled(v)})
            withheld.update(f"{gcode}.{k}" for k, v in row.items() if k not in core_codes and _filled(v))
        if group.multiple:
            if any(projected):
                core[gcode] = projected
        elif projected and projected[0]:
            core[gcode] = projected[0]
    return core, sorted(withheld)


def record_change(
    ctx: ProvinceContext,
    teacher: FileLike,
    before: dict[str, Any],
    *,
    op: RecordOp = RecordOp.UPSERT,
    to_province: str | None = None,
) -> OutboxEntry | None:
    """A file got a new effective version (``before`` was the previous one): append an outbox entry when its
    core view changed, and always for a transfer out (the record that hands the teacher over)."""
    if op != RecordOp.TRANSFER_OUT and core_view(ctx.catalogue, teacher.data)[0] == core_view(ctx.catalogue, before)[0]:
        return None
    return append(ctx, teacher, op=op, to_province=to_province)


def append(
    ctx: ProvinceContext, teacher: FileLike, op: RecordOp = RecordOp.UPSERT, to_province: str | None = None
) -> OutboxEntry:
    fields, withheld = core_view(ctx.catalogue, teacher.data)
    if op == RecordOp.TRANSFER_OUT:
        fields = {}
    fields = sealing.seal_core_fields(ctx.session, fields, teacher.teacher_number)  # never stored in clear
    version = next_value(ctx.session, "outbox")
    op = RecordOp(op).value  # the protocol carries plain strings
    record = CoreRecord(teacher.teacher_number, ctx.province, version, op, fields, tuple(withheld), to_province)
    record_from_json(record.to_json())  # never queue what the protocol would refuse
    entry = OutboxEntry(
        version=version, teacher_id=teacher.id, teacher_number=teacher.teacher_number, op=op, record=record.to_json()
    )
    ctx.session.add(entry)
    return entry


def pending(session: Session, limit: int = 1000) -> list[OutboxEntry]:
    return list(
        session.scalars(
            select(OutboxEntry).where(OutboxEntry.batch_seq.is_(None)).order_by(OutboxEntry.version).limit(limit)
        )
    )


def pending_records(session: Session, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
    """(version, record) of the next unbatched entries, oldest first (plain rows: no ORM objects).

    Batches take the outbox in version order, so every unbatched entry lies above the last batched version:
    the query is a primary-key range scan whose cost follows the backlog, not the size of the outbox (an
    ``ORDER BY version LIMIT`` filtered only on ``batch_seq IS NULL`` walks every batched entry first)."""
    done = session.scalar(select(func.coalesce(func.max(SyncBatch.version_to), 0)))
    stmt = (
        select(OutboxEntry.version, OutboxEntry.record)
        .where(OutboxEntry.version > done, OutboxEntry.batch_seq.is_(None))
        .order_by(OutboxEntry.version)
        .limit(limit)
    )
    return [(v, r) for v, r in session.execute(stmt)]


def mark_batched(session: Session, version_from: int, version_to: int, seq: int) -> None:
    """Assign a version range (gapless, so exactly the entries just read) to batch ``seq`` in one statement."""
    session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.version.between(version_from, version_to), OutboxEntry.batch_seq.is_(None))
        .values(batch_seq=seq)
    )
