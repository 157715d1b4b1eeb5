"""Intake of a province's batch (DESIGN §6.4): verify bytes first, then apply in one transaction.

1. the stateless checks (:func:`sync_protocol.batch.verify_batch`: envelope, signature, header, every record,
   Merkle root) run before any lock, so a province's next batch verifies while the previous one is applied —
   in a worker process when ``TMIS_VERIFY_WORKERS`` > 0 (:mod:`.verifying`), so truly at the same time;
2. lock the province row (``SELECT … FOR UPDATE``): one province's batches apply strictly in order,
   different provinces in parallel; on PostgreSQL a batch that arrived before its predecessor committed waits
   for it (:func:`_lock_in_turn`); verify again only if the trust version changed meanwhile;
3. :func:`sync_protocol.verifier.accept_batch` checks sequence, chain and clock; nothing is stored unless it
   passes. An identical resend returns the stored receipt; equivocation is stored as evidence (the caller
   commits it even though the request fails) and logged for the operator;
4. apply each record idempotently: a record not newer than the stored version is ignored; a record for a
   teacher number owned by another province is refused and reported (except the former owner's
   ``transfer_out`` naming the current owner, kept as history after a cross-province transfer); the identity
   (JBXX.SFZJH, sealed by the province: :mod:`sync_protocol.seal`) is opened in memory only to compute its keyed
   index (:mod:`national_node.sealing`) — a record whose seal does not open is refused and parked with
   ``seal_invalid``; the fields are stored as received, sealed; the same identity document under another
   province's teacher number raises a duplicate-identity notice to both provinces' inboxes (teacher numbers and
   provinces, never the ID number);
5. append the batch leaf, store the batch file content-addressed with the receipt, advance the state.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from common.db import RawJSON, bulk_insert, bulk_update, one_of, utcnow
from national_node.inbox import routing
from national_node.intake import verifying
from national_node.intake.models import (
    Batch,
    DuplicateIdentity,
    Evidence,
    RefusedRecord,
    TeacherCore,
    TeacherCoreHistory,
)
from national_node.keys import NodeKeys
from national_node.ledger import ledger
from national_node.provinces import provinces
from national_node.provinces.models import Province
from national_node.sealing import NationalSealKeys, Opener, opener, seal_keys_of
from sync_protocol.batch import Limits, header_from_payload, split_batch_file
from sync_protocol.canonical import format_time
from sync_protocol.dsse import parse_envelope
from sync_protocol.errors import AlreadyAcceptedError, EquivocationError
from sync_protocol.log import batch_leaf
from sync_protocol.records import CoreRecord, RecordOp, fields_bytes, parse_record
from sync_protocol.seal import SealError
from sync_protocol.verifier import ProvinceState, accept_batch

logger = logging.getLogger(__name__)
# How long a batch that arrived early waits for its predecessor's commit. Short: the waiting request holds one of
# the server's threads, and under load (many provinces at once) its predecessor may be queued behind it for a
# thread — with 10 s here, 4 provinces pushing at once stalled for the whole 10 s (bench_provinces). After the
# wait the gap is answered and the province sends the batch again after its predecessor's answer.
TURN_WAIT_SECONDS = 1.0
MAX_AHEAD = 8  # batches further ahead than this are refused at once (no province pushes that many at a time)


@dataclass(frozen=True)
class IntakeResult:
    receipt: bytes
    refused: list[dict[str, Any]]
    new: bool


def identity_key(fields: dict[str, Any], keys: NationalSealKeys | None = None) -> str | None:
    """The keyed identity index of clear core-record fields (a sealed number needs its province's seal keys:
    :meth:`national_node.sealing.Opener.identity_index`). Without ``keys`` the index is computed under a key made
    for this process only — equal documents still index equally within it (what ``scripts/bench.py`` needs to fill
    the column), but such a value means nothing elsewhere, and the intake always passes the node's keys."""
    basic = fields.get("JBXX") or {}
    if not basic.get("SFZJLXM") or not basic.get("SFZJH"):
        return None
    return (keys or _process_keys()).identity_index(str(basic["SFZJLXM"]), str(basic["SFZJH"]))


@cache
def _process_keys() -> NationalSealKeys:
    return NationalSealKeys.generate()


def _refusals(session: Session, province: str, seq: int) -> list[dict[str, Any]]:
    return [
        {"version": r.version, "teacher_number": r.teacher_number, "reason": r.reason, "details": r.details}
        for r in session.scalars(
            select(RefusedRecord)
            .where(RefusedRecord.province_code == province, RefusedRecord.seq == seq)
            .order_by(RefusedRecord.id)
        )
    ]


def intake(
    session: Session,
    keys: NodeKeys,
    origin: str,
    province: str,
    data: bytes,
    *,
    now: dt.datetime | None = None,
    limits: Limits | None = None,
) -> IntakeResult:
    now = now or utcnow()
    limits = limits or Limits()
    # Stateless checks first, before the province's lock: the next batch verifies while this one is applied.
    trust = ledger.current_trust(session)
    verified = verifying.verify(data, trust, province, limits)
    row = _lock_in_turn(session, province, verified.header.seq)
    row.last_seen = now
    if ledger.current_trust_version(session) != trust.version:  # keys changed meanwhile: verify under the new ones
        trust = ledger.current_trust(session)
        verified = verifying.verify(data, trust, province, limits)
    state = ProvinceState(province, row.last_seq, row.last_batch_hash, row.last_version)

    def stored(seq: int) -> str | None:
        return session.scalar(select(Batch.batch_hash).where(Batch.province_code == province, Batch.seq == seq))

    try:
        acc = accept_batch(
            data,
            province=province,
            trust=trust,
            state=state,
            stored_batch_hash=stored,
            now=now,
            limits=limits,
            verified=verified,
        )
    except AlreadyAcceptedError as e:
        batch = session.get(Batch, e.details["batch_hash"])
        return IntakeResult(batch.receipt, _refusals(session, province, batch.seq), False)
    except EquivocationError as e:
        session.add(
            Evidence(
                province_code=province,
                seq=e.details["seq"],
                accepted_batch_hash=e.details["accepted_batch_hash"],
                offered_batch_hash=e.details["offered_batch_hash"],
                offered_data=data,
            )
        )
        logger.error("EQUIVOCATION by province %s at seq %s: evidence stored", province, e.details["seq"])
        raise
    header = acc.batch.header
    refused = _apply_batch(
        session,
        keys,
        opener(session, seal_keys_of(keys), province),
        province,
        header.seq,
        acc.batch.batch_hash,
        acc.batch.records,
        acc.batch.record_lines,
        now,
    )
    leaf = batch_leaf(
        province=province,
        seq=header.seq,
        batch_hash=acc.batch.batch_hash,
        accepted_at=now,
        trust_version=acc.trust_version,
    )
    appended = ledger.append_leaf(session, leaf)
    receipt = ledger.receipt(keys, origin, appended, leaf).to_bytes()
    session.add(
        Batch(
            batch_hash=acc.batch.batch_hash,
            province_code=province,
            seq=header.seq,
            leaf_index=appended.index,
            data=data,
            receipt=receipt,
            record_count=header.record_count,
            accepted_at=now,
            refused_count=len(refused),
        )
    )
    row.last_seq, row.last_batch_hash, row.last_version = header.seq, acc.batch.batch_hash, header.version_to
    session.flush()
    return IntakeResult(receipt, refused, True)


def _lock_in_turn(session: Session, province: str, seq: int) -> Province:
    """Lock the province row, on PostgreSQL once the batch before ``seq`` is committed.

    A province may push its next batch before the previous answer came back (``SyncSettings.push_window``).
    Usually the predecessor already holds the lock while it is applied: ``SELECT … FOR UPDATE`` then simply
    waits for its commit and reads the row it committed (READ COMMITTED), with no polling. Only when this
    request overtook its predecessor on the way to the lock does it find a gap: it takes the lock in a
    savepoint, and on a gap rolls the savepoint back (which releases the row lock, so the predecessor can take
    it), sleeps 5 ms and tries again. After TURN_WAIT_SECONDS, for a batch more than MAX_AHEAD ahead, or on
    SQLite (one writer at a time: waiting here would hold up the very commit we wait for), the state checks
    decide as usual — the province answers a gap by sending that batch again after its predecessor."""
    if session.get_bind().dialect.name != "postgresql":
        return provinces.lock(session, province, fresh=True)
    deadline = time.monotonic() + TURN_WAIT_SECONDS
    while True:
        savepoint = session.begin_nested()
        row = provinces.lock(session, province, fresh=True)
        last = row.last_seq or 0
        if seq <= last + 1 or seq > last + 1 + MAX_AHEAD or time.monotonic() > deadline:
            savepoint.commit()  # the lock stays with the enclosing transaction
            return row
        savepoint.rollback()
        time.sleep(0.005)


def _chunks(items: list[Any], size: int = 1000) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _apply_batch(
    session: Session,
    keys: NodeKeys,
    identities: Opener,
    province: str,
    seq: int,
    batch_hash: str,
    records: tuple[CoreRecord, ...],
    lines: tuple[bytes, ...],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Apply a batch's records with a handful of set-based statements (not several per record): one select
    of the batch's known teachers (their stored fields only where a status change merges into them or a
    transfer_out keeps them), one ``COPY`` of new ones, one bulk update by primary key, one ``COPY`` of the
    history and one duplicate-identity query.

    History rows point into the stored batch (``batch_hash``, ``version``) instead of copying the fields:
    the batch file is kept content-addressed with its receipt, so :func:`record_at` reads any applied
    version back, byte for byte as the province signed it. A new row's ``fields`` is the slice of its
    verified record line (:func:`sync_protocol.records.fields_bytes`), not the decoded value encoded again."""
    cols = (TeacherCore.teacher_number, TeacherCore.province_code, TeacherCore.version, TeacherCore.identity_key)
    current: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted({r.teacher_number for r in records})):
        for row in session.execute(select(*cols).where(one_of(session, TeacherCore.teacher_number, chunk))):
            current[row.teacher_number] = {**row._mapping, "new": False}
    merge = sorted({r.teacher_number for r in records if r.op != RecordOp.UPSERT} & current.keys())
    for chunk in _chunks(merge):
        for tn, fields in session.execute(
            select(TeacherCore.teacher_number, TeacherCore.fields).where(
                one_of(session, TeacherCore.teacher_number, chunk)
            )
        ):
            current[tn]["fields"] = fields
    refused: list[dict[str, Any]] = []

    def refuse(record: CoreRecord, reason: str, details: dict[str, Any]) -> None:
        session.add(
            RefusedRecord(
                province_code=province,
                seq=seq,
                version=record.version,
                teacher_number=record.teacher_number,
                reason=reason,
                details=details,
            )
        )
        refused.append(
            {"version": record.version, "teacher_number": record.teacher_number, "reason": reason, "details": details}
        )

    history: list[dict[str, Any]] = []
    candidates: dict[str, tuple[str, dict[str, Any]]] = {}
    for record, line in zip(records, lines, strict=True):
        cur = current.get(record.teacher_number)
        if (
            cur is not None
            and cur["province_code"] != province
            and record.op == RecordOp.TRANSFER_OUT
            and record.to_province == cur["province_code"]
        ):
            # the former owner confirms a completed cross-province transfer: history only
            history.append(
                {
                    "teacher_number": record.teacher_number,
                    "province_code": province,
                    "version": record.version,
                    "batch_hash": batch_hash,
                    "op": record.op,
                    "applied_at": now,
                }
            )
            continue
        if cur is not None and cur["province_code"] != province:
            refuse(record, "owned_by_other_province", {"owner": cur["province_code"]})
            continue
        if cur is not None and cur["version"] >= record.version:
            continue  # older than what we hold: idempotent no-op
        if record.op == RecordOp.STATUS_CHANGE and cur is not None:
            stored = cur["fields"]
            fields = {**stored, "JBXX": {**stored.get("JBXX", {}), **record.fields.get("JBXX", {})}}
            raw = None
        else:
            fields, raw = record.fields, line
        if record.op != RecordOp.TRANSFER_OUT:
            try:
                key = identities.identity_index(fields, record.teacher_number)
            except SealError as e:
                refuse(record, "seal_invalid", {"code": e.code, "message": e.message, **e.details})
                continue
        else:
            key = cur["identity_key"] if cur else None
        if cur is None:
            cur = current[record.teacher_number] = {
                "teacher_number": record.teacher_number,
                "province_code": province,
                "new": True,
            }
        cur.update(version=record.version, op=record.op, updated_at=now)
        if record.op != RecordOp.TRANSFER_OUT or "fields" not in cur:
            cur.update(fields=fields, raw=raw, withheld=list(record.withheld), identity_key=key)
        cur["dirty"] = True
        history.append(
            {
                "teacher_number": record.teacher_number,
                "province_code": province,
                "version": record.version,
                "batch_hash": batch_hash,
                "op": record.op,
                "applied_at": now,
            }
        )
        if key and record.op == RecordOp.UPSERT:
            candidates[record.teacher_number] = (key, fields)
    keys_ = ("teacher_number", "province_code", "version", "op", "fields", "withheld", "identity_key", "updated_at")
    fresh = []
    for c in current.values():
        if c.get("dirty") and c["new"]:
            row = {k: c[k] for k in keys_}
            if c.get("raw") is not None:  # the fields as the province signed them (no re-encoding)
                row["fields"] = RawJSON(fields_bytes(c["raw"]))
            fresh.append(row)
    changed = [
        {k: c[k] for k in keys_ if k != "province_code"} for c in current.values() if c.get("dirty") and not c["new"]
    ]
    bulk_insert(session, TeacherCore, fresh)
    bulk_update(session, TeacherCore, changed, "teacher_number")
    bulk_insert(session, TeacherCoreHistory, history)
    session.flush()
    by_key: dict[str, list[TeacherCore]] = {}
    for chunk in _chunks(sorted({k for k, _f in candidates.values()})):
        for other in session.scalars(
            select(TeacherCore).where(
                one_of(session, TeacherCore.identity_key, chunk), TeacherCore.province_code != province
            )
        ):
            by_key.setdefault(other.identity_key, []).append(other)
    for teacher_number, (key, fields) in candidates.items():
        for other in by_key.get(key, []):
            _notice(
                session, keys, key, (teacher_number, province), (other.teacher_number, other.province_code), fields, now
            )
    return refused


def sweep_duplicates(
    session: Session, keys: NodeKeys, *, since: dt.datetime | None = None, now: dt.datetime | None = None
) -> int:
    """Find cross-province duplicate identities that no intake saw, and notify them; returns how many.

    An intake compares its records with what other provinces have *committed*: when two provinces send the same
    identity document at the same moment, neither transaction sees the other's row. This sweep (run every ten
    minutes over the rows changed in the last hour, and by ``tmis national duplicates --sweep`` over all) closes
    that window; a pair already recorded is never notified twice (:func:`_notice`)."""
    now = now or utcnow()
    a, b = aliased(TeacherCore), aliased(TeacherCore)
    stmt = (
        select(a, b)
        .join(b, (a.identity_key == b.identity_key) & (a.province_code < b.province_code))
        .where(a.identity_key.is_not(None), a.op != RecordOp.TRANSFER_OUT, b.op != RecordOp.TRANSFER_OUT)
        .order_by(a.teacher_number, b.teacher_number)
    )
    if since is not None:
        stmt = stmt.where((a.updated_at >= since) | (b.updated_at >= since))
    found = 0
    for x, y in session.execute(stmt):
        first, second = sorted([(x.teacher_number, x.province_code), (y.teacher_number, y.province_code)])
        known = session.scalar(
            select(DuplicateIdentity.id).where(
                DuplicateIdentity.teacher_number_a == first[0], DuplicateIdentity.teacher_number_b == second[0]
            )
        )
        with_identity = [r.fields for r in (x, y) if (r.fields or {}).get("JBXX", {}).get("SFZJH")]
        if known is None and with_identity:  # (a row moved in by transfer and not yet re-sent has no fields)
            _notice(
                session,
                keys,
                x.identity_key,
                (x.teacher_number, x.province_code),
                (y.teacher_number, y.province_code),
                with_identity[0],
                now,
            )
            found += 1
    return found


def record_at(session: Session, teacher_number: str, version: int) -> bytes | None:
    """The canonical bytes of core record ``version`` of ``teacher_number`` exactly as its province signed
    them, read from the stored batch its history row points to; None when no batch applied that version
    (e.g. the version-0 row of a teacher arriving by cross-province transfer)."""
    for h in session.scalars(
        select(TeacherCoreHistory).where(
            TeacherCoreHistory.teacher_number == teacher_number, TeacherCoreHistory.version == version
        )
    ):
        batch = session.get(Batch, h.batch_hash)
        if batch is None:
            continue
        env_line, lines = split_batch_file(batch.data)
        line = lines[version - header_from_payload(parse_envelope(env_line).payload).version_from]
        record = parse_record(line)
        if (record.teacher_number, record.version) != (teacher_number, version):  # cannot happen for a stored batch
            raise RuntimeError(f"batch {h.batch_hash} does not hold {teacher_number} version {version}")
        return line
    return None


def _notice(
    session: Session,
    keys: NodeKeys,
    key: str,
    mine: tuple[str, str],
    theirs: tuple[str, str],
    fields: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Record a cross-province duplicate identity once and tell both provinces: the teacher numbers and their
    provinces, never the ID number (each province looks its own file up)."""
    a, b = sorted([mine, theirs])
    exists = session.scalar(
        select(DuplicateIdentity.id).where(
            DuplicateIdentity.teacher_number_a == a[0], DuplicateIdentity.teacher_number_b == b[0]
        )
    )
    if exists:
        return
    session.add(
        DuplicateIdentity(
            identity_key=key,
            teacher_number_a=a[0],
            province_a=a[1],
            teacher_number_b=b[0],
            province_b=b[1],
            detected_at=now,
        )
    )
    body = {
        "doc_type": fields["JBXX"]["SFZJLXM"],
        "teacher_numbers": [{"teacher_number": a[0], "province": a[1]}, {"teacher_number": b[0], "province": b[1]}],
        "detected_at": format_time(now),
    }
    for p in sorted({a[1], b[1]}):
        routing.route(session, keys, p, "duplicate_identity", body, now)


def list_duplicates(session: Session, province: str | None = None) -> list[DuplicateIdentity]:
    stmt = select(DuplicateIdentity).order_by(DuplicateIdentity.id)
    if province:
        stmt = stmt.where(or_(DuplicateIdentity.province_a == province, DuplicateIdentity.province_b == province))
    return list(session.scalars(stmt))


def teacher_versions(
    session: Session, teacher_number: str
) -> tuple[TeacherCore | None, list[tuple[TeacherCoreHistory, int | None]]]:
    """A teacher number's current core record and every applied version with the sequence of the batch that
    carried it (None: a cross-province transfer message, not a batch)."""
    core = session.get(TeacherCore, teacher_number)
    seqs = dict(
        session.execute(
            select(Batch.batch_hash, Batch.seq)
            .join(TeacherCoreHistory, TeacherCoreHistory.batch_hash == Batch.batch_hash)
            .where(TeacherCoreHistory.teacher_number == teacher_number)
        ).all()
    )
    history = session.scalars(
        select(TeacherCoreHistory)
        .where(TeacherCoreHistory.teacher_number == teacher_number)
        .order_by(TeacherCoreHistory.applied_at, TeacherCoreHistory.id)
    )
    return core, [(h, seqs.get(h.batch_hash)) for h in history]


def list_evidence(session: Session) -> list[Evidence]:
    """Equivocations: second, different batches offered under a used sequence number."""
    return list(session.scalars(select(Evidence).order_by(Evidence.id)))
