"""The transactional outbox: what the next sync round sends to the national node.

* Entries are appended **in the same transaction** as the change that causes them, so a change and its
  outbox entry commit or roll back together.
* ``version`` comes from a counter row incremented with ``UPDATE … RETURNING``: on PostgreSQL the row
  lock serialises concurrent writers until they commit, on SQLite the database write lock does; a rolled
  back transaction gives its number back. Versions are therefore gapless per province.
* Only effective (reviewed) data enters: the record holds the core fields of the file's effective ``data``
  and lists every filled non-core field (catalogue or custom) as withheld.
* The identity (JBXX.SFZJH) is sealed (:mod:`.sealing`) before the record is built, so the stored record holds
  only the sealed form (record, bytes and leaf hash); before the province has a seal key it is held under the
  node data key and :func:`reseal_backlog` seals it, rewriting the stored forms, at the start of the next round.
* :func:`record_change` decides whether a new effective version is a core change; the teacher-file area's
  one effective-write path calls it, nothing else appends.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.errors import SyncError
from provincial_node.context import ProvinceContext
from provincial_node.db import next_value
from provincial_node.sync import sealing
from provincial_node.sync.models import OutboxEntry, SyncBatch
from sync_protocol.records import CoreRecord, RecordOp, parse_record, record_from_json, record_hash
from sync_protocol.seal import is_sealed


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
    entry = OutboxEntry(version=version, teacher_id=teacher.id, teacher_number=teacher.teacher_number, op=op)
    for key, value in entry_values(record).items():
        setattr(entry, key, value)
    ctx.session.add(entry)
    return entry


def entry_values(record: CoreRecord) -> dict[str, Any]:
    """The stored forms of an outbox entry's record, computed once, in the transaction that creates the entry:
    the record (JSON, for reading), its canonical bytes (the batch line, exactly what will be signed and sent)
    and their RFC 6962 leaf hash. The bytes pass the national node's own record parser (canonical form, schema,
    size limit) before they are queued: never queue what the protocol would refuse."""
    line = record.to_bytes()
    parse_record(line)
    return {"record": record.to_json(), "record_bytes": line, "leaf_hash": record_hash(line)}


def pending(session: Session, limit: int = 1000) -> list[OutboxEntry]:
    return list(
        session.scalars(
            select(OutboxEntry).where(OutboxEntry.batch_seq.is_(None)).order_by(OutboxEntry.version).limit(limit)
        )
    )


def last_batched(session: Session) -> tuple[int, str | None, int]:
    """(seq, batch hash, version_to) of the newest built batch, (0, None, 0) before the first. Batches take the
    outbox in version order, so its ``version_to`` is the highest batched version. Read through the primary key
    (the batch file itself is not fetched)."""
    row = session.execute(
        select(SyncBatch.seq, SyncBatch.batch_hash, SyncBatch.version_to).order_by(SyncBatch.seq.desc()).limit(1)
    ).first()
    return (row[0], row[1], row[2]) if row else (0, None, 0)


def pending_lines(session: Session, after: int, limit: int = 1000) -> list[tuple[int, bytes, bytes]]:
    """(version, canonical bytes, leaf hash) of the next unbatched entries above version ``after`` (the last
    batched one), oldest first, as stored (plain rows: no ORM objects, nothing parsed).

    Versions are gapless and batches take them in order, so the next ``limit`` entries are exactly the versions
    ``after + 1 … after + limit``, none of them batched. The query names that closed primary-key range and
    nothing else, so PostgreSQL reads at most ``limit`` index entries whatever the table's statistics say: an
    open ``version > after`` range filtered on ``batch_seq IS NULL``, on a freshly filled outbox not yet
    analysed, was planned as a scan and sort of every unbatched row (223 ms per batch with 200 000 pending),
    and even the closed range, with that filter, intersected the whole ``batch_seq`` index (7 ms against 1).
    That the entries are unbatched is checked here instead."""
    stmt = (
        select(OutboxEntry.version, OutboxEntry.record_bytes, OutboxEntry.leaf_hash, OutboxEntry.batch_seq)
        .where(OutboxEntry.version.between(after + 1, after + limit))
        .order_by(OutboxEntry.version)
    )
    rows = session.execute(stmt).all()
    batched = [v for v, _b, _h, seq in rows if seq is not None]
    if batched:
        raise SyncError(
            "outbox entries above the last batch are marked batched",
            details={"after": after, "versions": batched[:20]},
        )
    return [(v, bytes(b), bytes(h)) for v, b, h, _seq in rows]


def mark_batched(session: Session, version_from: int, version_to: int, seq: int) -> None:
    """Assign a version range (gapless, so exactly the entries just read, unbatched: :func:`pending_lines`) to
    batch ``seq`` in one statement on the primary-key range alone (see :func:`pending_lines` for the plan)."""
    result = session.execute(
        update(OutboxEntry).where(OutboxEntry.version.between(version_from, version_to)).values(batch_seq=seq)
    )
    if result.rowcount != version_to - version_from + 1:
        raise SyncError(
            "the outbox changed while a batch was built",
            details={"seq": seq, "from": version_from, "to": version_to, "marked": result.rowcount},
        )


def _unsealed_entries() -> Any:
    """Unbatched outbox entries not holding a sealed value (SQL on the stored JSON text): those holding the identity
    under the data key (appended before the province had a seal key), in clear (appended by a node from before
    sealed identities), or no identity at all (a status change, a transfer out). A round whose backlog is sealed
    reads only the last kind."""
    done_to = select(func.coalesce(func.max(SyncBatch.version_to), 0)).scalar_subquery()
    return select(OutboxEntry).where(
        OutboxEntry.version > done_to,
        OutboxEntry.batch_seq.is_(None),
        ~cast(OutboxEntry.record, Text).like("%seal1:%"),
    )


def _unsealed(record: dict[str, Any]) -> bool:
    number = ((record.get("fields") or {}).get("JBXX") or {}).get("SFZJH")
    return isinstance(number, str) and not is_sealed(number)


def reseal_backlog(session: Session, batch: int = 1000) -> int:
    """Unbatched records whose identity is not sealed: sealed under the current seal key and their stored forms
    (record, canonical bytes, leaf hash) written again, in one pass (nothing of them was sent). None before the
    province has a seal key."""
    if sealing.current_key(session) is None:
        return 0
    done, last = 0, 0
    while True:
        entries = list(
            session.scalars(
                _unsealed_entries().where(OutboxEntry.version > last).order_by(OutboxEntry.version).limit(batch)
            )
        )
        if not entries:
            return done
        for e in entries:
            if _unsealed(e.record):
                fields = sealing.seal_core_fields(session, e.record["fields"], e.teacher_number)
                for key, value in entry_values(record_from_json({**e.record, "fields": fields})).items():
                    setattr(e, key, value)
                done += 1
        last = entries[-1].version
        session.flush()


def held(session: Session) -> int:
    """Unbatched records whose identity is not sealed (the round builds nothing while there are any and the
    province has no seal key)."""
    stmt = _unsealed_entries().with_only_columns(OutboxEntry.record)
    return sum(1 for (record,) in session.execute(stmt) if _unsealed(record))
