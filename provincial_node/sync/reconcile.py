"""Reconciliation with the national node (对账, docs/protocol.md §16), the last phase of every round.

The province's **core view as the national node should hold it** is one leaf per teacher number: the version
and record hash of its newest record in an accepted batch that the national node did not refuse (a teacher
transferred out has none). :func:`fold` keeps ``core_leaf`` in step incrementally — it reads only the batches
accepted since the last fold (a watermark in ``node_setting``), and recomputes the digests of the buckets they
touched — so the round costs what changed, not the size of the province.

:func:`reconcile` sends the root (``POST …/digest``); on a mismatch it descends: the node digests the national
node answered, the bucket digests under each differing node, then its leaves of each differing bucket (at most
``MAX_BUCKETS_PER_ROUND`` buckets a round), and gets back the teacher numbers that differ. Both sides record
them: the national node on its comparison, the province on the round (``notes.reconcile``, and an error
``reconciliation_mismatch`` that makes the round ``partial``). The repair is ``tmis province sync reload``.

A round whose ``transfer_out`` record is still waiting skips the comparison: the national node moves a teacher
to the receiving province when the file arrives, and the sending province's record follows a round later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from common.db import bulk_insert
from provincial_node.db import NodeSetting
from provincial_node.sync.models import (
    BatchStatus,
    CoreLeaf,
    DigestBucket,
    MessageStatus,
    OutboxEntry,
    ParkedRecord,
    SyncBatch,
    UpwardMessage,
)
from sync_protocol import digest as D
from sync_protocol.batch import split_batch_file
from sync_protocol.records import RecordOp, record_hash

WATERMARK = "digest_seq"  # the last accepted batch folded into core_leaf

Call = Callable[[str, str, bytes], dict[str, Any]]


def _watermark(session: Session) -> int:
    row = session.get(NodeSetting, WATERMARK)
    return int(row.value) if row else 0


FOLD_LEAVES = 20_000  # leaves held before they are written (memory stays flat however many batches are folded)


def fold(session: Session) -> int:
    """Fold every accepted batch after the watermark into ``core_leaf`` (set-based: one delete and one insert per
    chunk of teachers, the touched buckets digested again); returns the records folded. Batch files are read one
    at a time and the leaves written every ``FOLD_LEAVES`` teachers, so a first round of 200 000 records does not
    hold 200 batch files (a province's peak memory tripled with them, docs/performance.md)."""
    done = _watermark(session)
    seqs = list(
        session.scalars(
            select(SyncBatch.seq)
            .where(SyncBatch.status == BatchStatus.ACCEPTED, SyncBatch.seq > done)
            .order_by(SyncBatch.seq)
        )
    )
    newest: dict[str, tuple[int, str] | None] = {}  # teacher number → (version, record hash), None: no leaf
    dirty: set[int] = set()
    folded, last = 0, done
    for seq in seqs:
        if seq != last + 1:
            break  # accepted strictly in order; a hole means the next one is not accepted yet
        data = session.scalar(select(SyncBatch.data).where(SyncBatch.seq == seq))
        parked = set(session.scalars(select(ParkedRecord.version).where(ParkedRecord.batch_seq == seq)))
        _env, lines = split_batch_file(data)
        for line in lines:
            record = orjson.loads(line)
            if record["version"] in parked:
                continue  # refused: the national node kept what it had
            tn = record["teacher_number"]
            if record["op"] == RecordOp.TRANSFER_OUT.value:
                newest[tn] = None
            else:
                newest[tn] = (record["version"], record_hash(line).hex())
            folded += 1
        del data, lines
        last = seq
        if len(newest) >= FOLD_LEAVES:  # later batches only overwrite these leaves again
            _store_leaves(session, newest, dirty)
            newest = {}
    _store_leaves(session, newest, dirty)
    if dirty:
        store_buckets(session, sorted(dirty))
    if last != done:
        row = session.get(NodeSetting, WATERMARK)
        if row is None:
            session.add(NodeSetting(key=WATERMARK, value=str(last)))
        else:
            row.value = str(last)
    return folded


def _store_leaves(session: Session, newest: dict[str, tuple[int, str] | None], dirty: set[int]) -> None:
    if not newest:
        return
    numbers = sorted(newest)
    dirty.update(D.bucket_of(tn) for tn in numbers)
    for chunk in _chunks(numbers):
        session.execute(delete(CoreLeaf).where(CoreLeaf.teacher_number.in_(chunk)))
    bulk_insert(
        session,
        CoreLeaf,
        [
            {"teacher_number": tn, "bucket": D.bucket_of(tn), "version": v[0], "record_hash": v[1]}
            for tn, v in sorted(newest.items())
            if v is not None
        ],
    )


def _chunks(items: list, size: int = 500) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def transfer_out_in_flight(session: Session) -> bool:
    """A teacher handed over to another province whose ``transfer_out`` record is not accepted yet: the national
    node moves a teacher when the file arrives, the province's record follows (after the national node's
    completion message); comparing in between would report a difference that is already on its way."""
    done = session.scalar(
        select(func.coalesce(func.max(SyncBatch.version_to), 0)).where(SyncBatch.status == BatchStatus.ACCEPTED)
    )
    stmt = select(OutboxEntry.version).where(OutboxEntry.op == RecordOp.TRANSFER_OUT.value, OutboxEntry.version > done)
    if session.scalar(stmt.limit(1)) is not None:
        return True
    handed_over = {
        orjson.loads(payload)["body"]["teacher_number"]
        for payload in session.scalars(
            select(UpwardMessage.payload).where(
                UpwardMessage.kind == "transfer_file", UpwardMessage.status == MessageStatus.ACCEPTED
            )
        )
    }
    if not handed_over:
        return False
    confirmed = set(
        session.scalars(
            select(OutboxEntry.teacher_number).where(
                OutboxEntry.op == RecordOp.TRANSFER_OUT.value,
                OutboxEntry.version <= done,
                OutboxEntry.teacher_number.in_(sorted(handed_over)),
            )
        )
    )
    return bool(handed_over - confirmed)


def bucket_leaves(session: Session, bucket: int) -> list[D.Leaf]:
    stmt = select(CoreLeaf.teacher_number, CoreLeaf.version, CoreLeaf.record_hash).where(CoreLeaf.bucket == bucket)
    return sorted(D.Leaf(*row) for row in session.execute(stmt))


def store_buckets(session: Session, buckets_: list[int]) -> None:
    """Digest the given buckets again from their leaves (two statements a chunk)."""
    for chunk in _chunks(buckets_, 2000):
        grouped: dict[int, list[D.Leaf]] = {}
        stmt = select(CoreLeaf.teacher_number, CoreLeaf.version, CoreLeaf.record_hash, CoreLeaf.bucket).where(
            CoreLeaf.bucket.in_(chunk)
        )
        for tn, v, h, b in session.execute(stmt):
            grouped.setdefault(b, []).append(D.Leaf(tn, v, h))
        session.execute(delete(DigestBucket).where(DigestBucket.bucket.in_(chunk)))
        bulk_insert(
            session, DigestBucket, [{"bucket": b, "digest": D.bucket_digest(ls)} for b, ls in sorted(grouped.items())]
        )


def buckets(session: Session) -> dict[int, str]:
    return dict(session.execute(select(DigestBucket.bucket, DigestBucket.digest)).all())


def leaf_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(CoreLeaf))


def reconcile(session_factory: Any, call: Call, province: str) -> dict[str, Any]:
    """Fold, compare the root with the national node's, and on a mismatch descend to the differing teacher
    numbers. Returns the outcome for the round's notes."""
    with session_factory.begin() as s:
        fold(s)
        if transfer_out_in_flight(s):
            return {"skipped": "a transfer out is waiting to be accepted (the national node moved the teacher first)"}
        mine = buckets(s)
        count = leaf_count(s)
    nodes = D.node_digests(mine)
    root = D.root_of(nodes)
    base = f"/api/v1/provinces/{province}/digest"
    answer = call("POST", base, json.dumps({"root": root, "leaves": count}).encode())
    if answer.get("match"):
        return {"match": True, "root": root, "leaves": count}
    theirs = D.check_level(answer.get("nodes"), "nodes")
    found: list[dict[str, Any]] = []
    checked, truncated = 0, False
    for node in D.differing(nodes, theirs):
        their_buckets = D.check_level(
            call("POST", f"{base}/node", json.dumps({"node": node}).encode()).get("buckets"), "buckets"
        )
        for i in D.differing(D.bucket_children(mine, node), their_buckets):
            if checked >= D.MAX_BUCKETS_PER_ROUND:
                truncated = True
                break
            bucket = node * D.FANOUT + i
            with session_factory() as s:
                leaves = [x.to_json() for x in bucket_leaves(s, bucket)]
            got = call("POST", f"{base}/bucket", json.dumps({"bucket": bucket, "leaves": leaves}).encode())
            found.extend(got.get("differing", []))
            checked += 1
        if truncated:
            break
    found.sort(key=lambda d: d["teacher_number"])
    return {
        "match": False,
        "root": root,
        "national_root": answer.get("root"),
        "leaves": count,
        "national_leaves": answer.get("leaves"),
        "differing": found,
        "buckets_checked": checked,
        "truncated": truncated,
    }
