"""A province restored from a backup older than what the national node accepted (docs/operations.md,
"Backup and restore"; docs/protocol.md §17). Run at the start of every round, before anything is built.

The national node's answer to ``GET …/state`` says how far the province's chain got there. When it is ahead
of what this database has accepted, the node **adopts** the national node's batches after its own last
accepted one (``GET …/accepted``), each only after its receipt verified (signed checkpoint, inclusion of the
leaf naming exactly that batch hash and sequence) and its header continues the chain:

* a batch this database built and still holds with the same hash is marked accepted (its answer was lost);
* one it holds under the same sequence with another hash is dropped unsent and its outbox entries are queued
  again — it is never pushed, so the node never equivocates;
* one it lacks is stored as accepted: its next batch then continues from the national node's sequence and batch
  hash, and the outbox counter continues from the national node's last version;
* the outbox entries the adopted batches cover are marked as sent; entries above the national node's last
  version stay queued (what the national node lacks is sent in this round);
* every record of an adopted batch whose version this database does not have is an edit made after the backup:
  its teacher number goes into the **recovery report** (``recovery_entry``; ``tmis province sync recovery``),
  with the national node's version and the newest this database still has, for operators to enter again.

Inbox messages the national node routed after the backup are pulled again in the same round (the inbox cursor
is the restored one) and applied to the restored data; transfer messages waiting in the restored outbox that
were accepted since are answered with their stored receipts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import SyncError
from provincial_node.db import Counter
from provincial_node.sync import outbox
from provincial_node.sync.models import BatchStatus, OutboxEntry, RecoveryEntry, SyncBatch
from provincial_node.sync.receipts import verified_receipt
from sync_protocol.batch import header_from_payload, split_batch_file
from sync_protocol.dsse import parse_envelope
from sync_protocol.records import record_from_json
from sync_protocol.trust import TrustMetadata

Call = Callable[..., dict[str, Any]]
PAGE = 8


def recover(session_factory: Any, call: Call, province: str, trust: Callable[[Session], TrustMetadata]) -> dict:
    """Compare with the national node's chain position; adopt what it accepted after this database's last
    accepted batch. Returns what was done (empty when nothing had to be)."""
    theirs = call("GET", f"/api/v1/provinces/{province}/state")
    with session_factory() as s:
        mine = s.scalar(
            select(func.coalesce(func.max(SyncBatch.seq), 0)).where(SyncBatch.status == BatchStatus.ACCEPTED)
        )
    if int(theirs["last_seq"]) < mine:
        raise SyncError(
            f"the national node holds batches up to {theirs['last_seq']} of this province, this node had {mine} "
            "accepted: the national node lost data; ask its operator (nothing is sent until this is resolved)",
            details={"national_last_seq": theirs["last_seq"], "local_last_accepted": mine},
        )
    out: dict[str, Any] = {}
    if int(theirs["last_seq"]) == mine:
        return out  # the usual case: nothing accepted there that this database does not know
    after = mine
    while after < int(theirs["last_seq"]):
        page = call("GET", f"/api/v1/provinces/{province}/accepted?after={after}&limit={PAGE}")["batches"]
        if not page:
            break
        with session_factory.begin() as s:
            for item in page:
                _adopt(s, trust(s), province, item, out)
                after = item["seq"]
    with session_factory.begin() as s:
        _drop_unchained(s, theirs, out)
        _renumber_pending(s, int(theirs["last_version"]), out)
    return out


def _adopt(s: Session, trust: TrustMetadata, province: str, item: dict, out: dict) -> None:
    data = item["file"].encode("utf-8")
    env_line, lines = split_batch_file(data)
    payload = parse_envelope(env_line).payload
    header = header_from_payload(payload)
    batch_hash = hashlib.sha256(payload).hexdigest()
    if header.province != province or header.seq != item["seq"]:
        raise SyncError("the national node answered a batch of another province or sequence", details=item["seq"])
    receipt = verified_receipt(trust, item["receipt"], batch_hash=batch_hash, seq=header.seq)
    prev = s.get(SyncBatch, header.seq - 1)
    if header.seq > 1 and (prev is None or prev.batch_hash != header.prev_batch_hash):
        raise SyncError("an adopted batch does not continue this node's chain", details={"seq": header.seq})
    local = s.get(SyncBatch, header.seq)
    now = utcnow()
    if local is not None and local.batch_hash == batch_hash:
        if local.status != BatchStatus.ACCEPTED:
            local.status, local.receipt, local.accepted_at = BatchStatus.ACCEPTED, receipt, now
            out.setdefault("confirmed", []).append(header.seq)
        return
    if local is not None:  # built here under a sequence the national node used for another batch: never send it
        s.execute(update(OutboxEntry).where(OutboxEntry.batch_seq == local.seq).values(batch_seq=None))
        s.delete(local)
        s.flush()
        out.setdefault("dropped", []).append(header.seq)
    s.add(
        SyncBatch(
            seq=header.seq,
            batch_hash=batch_hash,
            data=data,
            version_from=header.version_from,
            version_to=header.version_to,
            status=BatchStatus.ACCEPTED,
            receipt=receipt,
            accepted_at=now,
        )
    )
    # entries this database holds under the adopted versions: the same record (it was in the backup and sent
    # after it) is marked sent; another record under a used version (written after the restore) is queued again
    line_of = {header.version_from + i: line for i, line in enumerate(lines)}
    same: set[int] = set()
    for entry in s.scalars(
        select(OutboxEntry).where(OutboxEntry.version.between(header.version_from, header.version_to))
    ):
        if entry.record_bytes == line_of[entry.version]:
            entry.batch_seq = header.seq
            same.add(entry.version)
        else:
            entry.batch_seq = None
            out.setdefault("requeued", []).append(entry.teacher_number)
    lost: dict[str, int] = {}
    for line in lines:
        record = orjson.loads(line)
        if record["version"] not in same:
            lost[record["teacher_number"]] = max(lost.get(record["teacher_number"], 0), record["version"])
    for tn, version in sorted(lost.items()):
        local_version = s.scalar(
            select(func.max(OutboxEntry.version)).where(
                OutboxEntry.teacher_number == tn, OutboxEntry.batch_seq.is_not(None), OutboxEntry.version < version
            )
        )
        entry = s.scalar(
            select(RecoveryEntry).where(RecoveryEntry.teacher_number == tn, RecoveryEntry.resolved_at.is_(None))
        )
        if entry is None:
            s.add(
                RecoveryEntry(
                    teacher_number=tn,
                    national_version=version,
                    local_version=local_version,
                    batch_seq=header.seq,
                    detected_at=now,
                )
            )
        else:
            entry.national_version, entry.batch_seq = max(entry.national_version, version), header.seq
    s.flush()
    out.setdefault("adopted", []).append(header.seq)
    out["lost_edits"] = sorted(set(out.get("lost_edits", [])) | set(lost))


def _drop_unchained(s: Session, theirs: dict, out: dict) -> None:
    """Built batches after the national node's last one must continue its chain (sequence, previous batch hash,
    versions); from the first that does not, they are dropped unsent and their entries queued again (built anew
    under the next free sequence number)."""
    seq, prev, version = int(theirs["last_seq"]) + 1, theirs["last_batch_hash"], int(theirs["last_version"]) + 1
    built = s.scalars(
        select(SyncBatch).where(SyncBatch.seq >= seq, SyncBatch.status == BatchStatus.BUILT).order_by(SyncBatch.seq)
    ).all()
    for i, batch in enumerate(built):
        header = header_from_payload(parse_envelope(batch.data[: batch.data.index(b"\n")]).payload)
        if (batch.seq, header.prev_batch_hash, batch.version_from) == (seq, prev, version):
            seq, prev, version = seq + 1, batch.batch_hash, batch.version_to + 1
            continue
        for b in built[i:]:
            s.execute(update(OutboxEntry).where(OutboxEntry.batch_seq == b.seq).values(batch_seq=None))
            s.delete(b)
            out.setdefault("dropped", []).append(b.seq)
        return


def _renumber_pending(s: Session, last_version: int, out: dict) -> None:
    """Queued entries continue after the national node's last version (and after the built batches still to
    send): a version the national node used is never used again for another record. Entries keep their order;
    the outbox counter continues after the last one."""
    built_to = s.scalar(
        select(func.coalesce(func.max(SyncBatch.version_to), 0)).where(SyncBatch.status == BatchStatus.BUILT)
    )
    base = max(last_version, built_to)
    pending = s.execute(
        select(OutboxEntry.version, OutboxEntry.record)
        .where(OutboxEntry.batch_seq.is_(None))
        .order_by(OutboxEntry.version)
    ).all()
    target = list(range(base + 1, base + 1 + len(pending)))
    if [v for v, _r in pending] != target:
        for v, _r in pending:  # out of the way first: versions are the primary key
            s.execute(update(OutboxEntry).where(OutboxEntry.version == v).values(version=-v))
        for (v, record), version in zip(pending, target, strict=True):
            renumbered = record_from_json({**record, "version": version})
            s.execute(
                update(OutboxEntry)
                .where(OutboxEntry.version == -v)
                .values(version=version, **outbox.entry_values(renumbered))
            )
        out["renumbered"] = len(pending)
    s.expire_all()
    counter = base + len(pending)
    s.execute(update(Counter).where(Counter.name == "outbox", Counter.value < counter).values(value=counter))


def open_report(session: Session) -> list[RecoveryEntry]:
    stmt = select(RecoveryEntry).where(RecoveryEntry.resolved_at.is_(None)).order_by(RecoveryEntry.teacher_number)
    return list(session.scalars(stmt))
