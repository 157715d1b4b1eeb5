"""Reconciliation and recovery services (docs/protocol.md §16, §17).

**The digest of a province's core view here** is built on ``core_leaf``: one leaf per teacher number the
store holds for the province at a version above 0 whose last record is not a ``transfer_out``, with the hash
of that version's record as the province signed it (read from the stored batch that carried it). :func:`refresh`
brings the leaves in step with ``teacher_core`` when a province asks — only teachers whose stored version or
owner changed since are read again, each batch once — and recomputes the digests of the buckets it touched.

**Comparison**: the province sends its root; a different root is recorded with both roots and answered with the
256 node digests; the province asks for the bucket digests under each differing node and then sends the
leaves of each differing bucket, and the teacher numbers that differ are recorded on the comparison here and
answered to the province — both sides report them, and nothing but the differing buckets travels.

**Recovery**: a province's chain position (:func:`state`) and the batches accepted after a sequence number,
with their receipts (:func:`accepted_after`), so that a province restored from an older backup adopts what
the national node accepted since instead of building another batch under a used sequence number.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from common.db import bulk_insert, utcnow
from national_node.intake.models import Batch, TeacherCore, TeacherCoreHistory
from national_node.provinces import provinces
from national_node.reconcile.models import CoreLeaf, DigestBucket, Reconciliation
from sync_protocol import digest as D
from sync_protocol.batch import header_from_payload, split_batch_file
from sync_protocol.dsse import parse_envelope
from sync_protocol.errors import MalformedError
from sync_protocol.records import RecordOp, record_hash

MAX_ACCEPTED_PAGE = 32


REFRESH_LEAVES = 20_000  # changed leaves computed and written at a time (the first refresh of 200 000 teachers
# held every leaf row and record hash at once: the national server's peak memory doubled, docs/performance.md)


def refresh(session: Session, province: str) -> None:
    """Bring ``core_leaf`` and ``digest_bucket`` of ``province`` in step with ``teacher_core``, with set-based
    statements: only teachers whose stored version or owner changed are read again (each batch once), and only
    the buckets they touch are digested again."""
    tc = TeacherCore
    leaves = dict(
        session.execute(
            select(CoreLeaf.teacher_number, CoreLeaf.version).where(CoreLeaf.province_code == province)
        ).all()
    )
    current = dict(
        session.execute(
            select(tc.teacher_number, tc.version).where(
                tc.province_code == province, tc.version > 0, tc.op != RecordOp.TRANSFER_OUT.value
            )
        ).all()
    )
    gone = [tn for tn in leaves if tn not in current]
    changed = sorted(tn for tn, v in current.items() if leaves.get(tn) != v)
    if not gone and not changed:
        return
    dirty: set[tuple[str, int]] = set()
    for chunk in _chunks(gone + changed):  # a teacher that moved here also leaves its old province's tree
        for code, bucket in session.execute(
            select(CoreLeaf.province_code, CoreLeaf.bucket).where(CoreLeaf.teacher_number.in_(chunk))
        ):
            dirty.add((code, bucket))
        session.execute(delete(CoreLeaf).where(CoreLeaf.teacher_number.in_(chunk)))
    for part in _chunks(changed, REFRESH_LEAVES):  # the leaves written part by part: memory stays flat with N
        hashes = _record_hashes(session, province, [(tn, current[tn]) for tn in part])
        rows = []
        for tn in part:
            h = hashes.get((tn, current[tn]))
            if h is None:
                continue  # no stored record for that version (cannot happen for a version above 0)
            bucket = D.bucket_of(tn)
            rows.append(
                {
                    "teacher_number": tn,
                    "province_code": province,
                    "bucket": bucket,
                    "version": current[tn],
                    "record_hash": h,
                }
            )
            dirty.add((province, bucket))
        bulk_insert(session, CoreLeaf, rows)
        del hashes, rows
    for code in sorted({c for c, _b in dirty}):
        _store_buckets(session, code, sorted(b for c, b in dirty if c == code))


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _record_hashes(session: Session, province: str, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """``record_hash`` of each (teacher number, version) the province sent, read from the stored batches (each
    batch read once)."""
    by_batch: dict[str, list[tuple[str, int]]] = defaultdict(list)
    wanted_set = set(wanted)
    for chunk in _chunks(sorted({tn for tn, _v in wanted})):
        for tn, version, batch_hash in session.execute(
            select(TeacherCoreHistory.teacher_number, TeacherCoreHistory.version, TeacherCoreHistory.batch_hash).where(
                TeacherCoreHistory.teacher_number.in_(chunk), TeacherCoreHistory.province_code == province
            )
        ):
            if (tn, version) in wanted_set:
                by_batch[batch_hash].append((tn, version))
    out = {}
    for batch_hash, items in by_batch.items():
        data = session.scalar(select(Batch.data).where(Batch.batch_hash == batch_hash))
        if data is None:
            continue
        env_line, lines = split_batch_file(data)
        first = header_from_payload(parse_envelope(env_line).payload).version_from
        for tn, version in items:
            out[(tn, version)] = record_hash(lines[version - first]).hex()
    return out


def _store_buckets(session: Session, province: str, buckets_: list[int]) -> None:
    """Digest the given buckets of ``province`` again from their leaves (two statements a chunk)."""
    for chunk in _chunks(buckets_, 2000):
        grouped: dict[int, list[D.Leaf]] = defaultdict(list)
        for tn, v, h, b in session.execute(
            select(CoreLeaf.teacher_number, CoreLeaf.version, CoreLeaf.record_hash, CoreLeaf.bucket).where(
                CoreLeaf.province_code == province, CoreLeaf.bucket.in_(chunk)
            )
        ):
            grouped[b].append(D.Leaf(tn, v, h))
        session.execute(
            delete(DigestBucket).where(DigestBucket.province_code == province, DigestBucket.bucket.in_(chunk))
        )
        bulk_insert(
            session,
            DigestBucket,
            [
                {"province_code": province, "bucket": b, "digest": D.bucket_digest(ls)}
                for b, ls in sorted(grouped.items())
            ],
        )


def buckets(session: Session, province: str) -> dict[int, str]:
    stmt = select(DigestBucket.bucket, DigestBucket.digest).where(DigestBucket.province_code == province)
    return dict(session.execute(stmt).all())


def leaf_count(session: Session, province: str) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(CoreLeaf).where(CoreLeaf.province_code == province))


def compare_root(session: Session, province: str, body: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """``{"root", "leaves"}`` from the province: refresh this side, compare, record the comparison; answer this
    side's root and count, and the 256 node digests when the roots differ."""
    if not isinstance(body, dict) or set(body) != {"root", "leaves"}:
        raise MalformedError("a digest is {root, leaves}")
    root = D.check_digest(body["root"], "root")
    count = body["leaves"]
    if type(count) is not int or count < 0:
        raise MalformedError("leaves must be a non-negative integer")
    provinces.lock(session, province)  # one refresh of a province at a time (a retried request waits)
    refresh(session, province)
    nodes = D.node_digests(buckets(session, province))
    ours, ours_count = D.root_of(nodes), leaf_count(session, province)
    matched = ours == root
    session.add(
        Reconciliation(
            province_code=province,
            checked_at=now or utcnow(),
            province_root=root,
            national_root=ours,
            matched=matched,
            province_leaves=count,
            national_leaves=ours_count,
            differing=[],
        )
    )
    answer: dict[str, Any] = {"match": matched, "root": ours, "leaves": ours_count}
    if not matched:
        answer["nodes"] = nodes
    return answer


def node_children(session: Session, province: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != {"node"}:
        raise MalformedError("a node request is {node}")
    node = D.check_index(body["node"], "node", D.FANOUT)
    return {"node": node, "buckets": D.bucket_children(buckets(session, province), node)}


def compare_bucket(session: Session, province: str, body: Any) -> dict[str, Any]:
    """The province's leaves of one bucket: answer this side's and the teacher numbers that differ, and add them
    to the province's latest comparison."""
    if not isinstance(body, dict) or set(body) != {"bucket", "leaves"}:
        raise MalformedError("a bucket request is {bucket, leaves}")
    bucket = D.check_index(body["bucket"], "bucket", D.BUCKETS)
    theirs = D.leaves_from_json(body["leaves"], bucket)
    ours = [
        D.Leaf(tn, v, h)
        for tn, v, h in session.execute(
            select(CoreLeaf.teacher_number, CoreLeaf.version, CoreLeaf.record_hash).where(
                CoreLeaf.province_code == province, CoreLeaf.bucket == bucket
            )
        )
    ]
    diff = [
        {"teacher_number": d["teacher_number"], "province_version": d["mine"], "national_version": d["theirs"]}
        for d in D.compare_leaves(theirs, ours)
    ]
    latest = session.scalar(
        select(Reconciliation)
        .where(Reconciliation.province_code == province)
        .order_by(Reconciliation.id.desc())
        .limit(1)
        .with_for_update()
    )
    if latest is not None and diff:
        known = {d["teacher_number"] for d in latest.differing}
        latest.differing = [*latest.differing, *[d for d in diff if d["teacher_number"] not in known]]
    return {"bucket": bucket, "leaves": [x.to_json() for x in sorted(ours)], "differing": diff}


def latest(session: Session, province: str | None = None, limit: int = 20) -> list[Reconciliation]:
    stmt = select(Reconciliation).order_by(Reconciliation.id.desc()).limit(limit)
    if province:
        stmt = stmt.where(Reconciliation.province_code == province)
    return list(session.scalars(stmt))


# ------------------------------------------------------------------------------------------------ recovery


def state(session: Session, province: str) -> dict[str, Any]:
    """The province's chain position here: what a restored province adopts."""
    row = provinces.get(session, province)
    return {
        "province": row.code,
        "last_seq": row.last_seq,
        "last_batch_hash": row.last_batch_hash,
        "last_version": row.last_version,
        "inbox_seq": row.inbox_seq,
        "inbox_acked": row.inbox_acked,
    }


def accepted_after(session: Session, province: str, after: int, limit: int = 8) -> list[dict[str, Any]]:
    """The batches accepted after ``after``, in order, each as its file (text) and its receipt."""
    if after < 0 or not 1 <= limit <= MAX_ACCEPTED_PAGE:
        raise MalformedError(f"after must be >= 0 and limit from 1 to {MAX_ACCEPTED_PAGE}")
    rows = session.scalars(
        select(Batch).where(Batch.province_code == province, Batch.seq > after).order_by(Batch.seq).limit(limit)
    )
    return [
        {
            "seq": b.seq,
            "batch_hash": b.batch_hash,
            "file": b.data.decode("utf-8"),
            "receipt": json.loads(b.receipt),
        }
        for b in rows
    ]
