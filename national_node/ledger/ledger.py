"""Trust versions and the acceptance log, stored (rules in docs/protocol.md).

* :func:`publish_trust` signs a new trust version listing the provinces' active keys, stores it and logs it;
* :func:`append_leaf` appends to the log (serialised on the ``log_head`` row); :func:`checkpoint` and
  :func:`receipt` sign over the log as it stands.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.db import utcnow
from national_node.db import NodeSetting
from national_node.keys import ROOT_THRESHOLD, NodeKeys
from national_node.ledger.models import LogLeaf, TrustVersion
from national_node.provinces import provinces
from sync_protocol import merkle
from sync_protocol.log import Checkpoint as CheckpointValue
from sync_protocol.log import Receipt, leaf_bytes, sign_checkpoint, trust_leaf
from sync_protocol.trust import TrustMetadata, build_trust, load_pinned_trust

TRUST_VALIDITY = dt.timedelta(days=365)


def current_trust(session: Session) -> TrustMetadata:
    row = session.scalar(select(TrustVersion).order_by(TrustVersion.version.desc()).limit(1))
    if row is None:
        raise RuntimeError("no trust metadata: run `tmis national init`")
    return _parse_trust(row.envelope)


def current_trust_version(session: Session) -> int | None:
    """The newest trust version's number only (a cheap check that the trust state has not changed)."""
    return session.scalar(select(func.max(TrustVersion.version)))


@cache
def _parse_trust(envelope: bytes) -> TrustMetadata:
    return load_pinned_trust(envelope)


def all_trust_documents(session: Session) -> list[bytes]:
    return list(session.scalars(select(TrustVersion.envelope).order_by(TrustVersion.version)))


def publish_trust(
    session: Session, keys: NodeKeys, log_origin: str, reason: str, now: dt.datetime | None = None
) -> TrustMetadata:
    """Sign a new trust version listing every active province key, store it and log it."""
    now = now or utcnow()
    latest = session.scalar(select(func.max(TrustVersion.version))) or 0
    envelope = build_trust(
        version=latest + 1,
        issued_at=now,
        expires=now + TRUST_VALIDITY,
        root_keys=[r.public for r in keys.roots],
        root_threshold=ROOT_THRESHOLD,
        log_origin=log_origin,
        log_keys=[keys.log.public],
        message_keys=[keys.messages.public],
        provinces={code: (1, ks) for code, ks in provinces.active_keys(session).items()},
        signers=keys.roots[:ROOT_THRESHOLD],
    )
    trust = _parse_trust(envelope)
    session.add(TrustVersion(version=trust.version, envelope=envelope, trust_hash=trust.hash, reason=reason))
    append_leaf(session, trust_leaf(version=trust.version, trust_hash=trust.hash, accepted_at=now))
    return trust


class Appended(NamedTuple):
    """A leaf just appended: its index, the log's new size and root, and the leaf's inclusion proof."""

    index: int
    size: int
    root: bytes
    proof: tuple[bytes, ...]


_FRONTIER = "frontier1"


def _encode_frontier(size: int, front: list[bytes]) -> str:
    return " ".join([_FRONTIER, str(size), *(h.hex() for h in front)])


def _decode_frontier(value: str) -> tuple[int, list[bytes]] | None:
    """The log's size and frontier kept in the ``log_head`` row; None for a row written before they were kept
    there (its value is "0") or one that does not add up."""
    parts = value.split()
    if len(parts) < 2 or parts[0] != _FRONTIER or not parts[1].isdigit():
        return None
    size, front = int(parts[1]), [bytes.fromhex(h) for h in parts[2:]]
    if len(front) != size.bit_count() or any(len(h) != merkle.HASH_SIZE for h in front):
        return None
    return size, front


def append_leaf(session: Session, leaf: dict) -> Appended:
    """Append a leaf at the next index. Appends are serialised by locking the ``log_head`` row until the
    transaction ends (provinces apply their records in parallel; only this short tail is serial), and the
    primary key on the index would refuse a second leaf at one index rather than fork the log.

    The row also keeps the log's frontier (:func:`sync_protocol.merkle.frontier`: O(log n) hashes), so an append,
    its receipt and the newest checkpoint cost the same however long the log has grown; the leaves are read
    back only where the frontier is missing or does not match the log (written by a version that did not keep
    it), once, and the frontier is written from then on."""
    head = session.execute(select(NodeSetting).where(NodeSetting.key == "log_head").with_for_update()).scalar_one()
    index = session.scalar(select(func.coalesce(func.max(LogLeaf.index), -1))) + 1
    kept = _decode_frontier(head.value)
    front = kept[1] if kept is not None and kept[0] == index else merkle.frontier(leaf_hashes(session))
    data = leaf_bytes(leaf)
    digest = merkle.leaf_hash(data)
    after = merkle.append(front, index, digest)
    session.add(LogLeaf(index=index, leaf=data, leaf_hash=digest))
    head.value = _encode_frontier(index + 1, after)
    session.flush()
    return Appended(index, index + 1, merkle.frontier_root(after), tuple(merkle.newest_leaf_proof(front)))


def leaf_hashes(session: Session, size: int | None = None) -> list[bytes]:
    stmt = select(LogLeaf.leaf_hash).order_by(LogLeaf.index)
    if size is not None:
        stmt = stmt.where(LogLeaf.index < size)
    return list(session.scalars(stmt))


def leaves(session: Session) -> list[bytes]:
    """Every leaf's canonical bytes, in log order."""
    return list(session.scalars(select(LogLeaf.leaf).order_by(LogLeaf.index)))


def checkpoint(session: Session, keys: NodeKeys, origin: str, size: int | None = None) -> str:
    """A signed checkpoint of the log: as it stands (from the kept frontier: one row, however long the log), or
    of its first ``size`` leaves (read back)."""
    if size is None:
        value = session.scalar(select(NodeSetting.value).where(NodeSetting.key == "log_head"))
        kept = _decode_frontier(value) if value is not None else None
        if kept is not None:
            return sign_checkpoint(CheckpointValue(origin, kept[0], merkle.frontier_root(kept[1])), keys.log)
    hashes = leaf_hashes(session, size)
    return sign_checkpoint(CheckpointValue(origin, len(hashes), merkle.root(hashes)), keys.log)


def receipt(keys: NodeKeys, origin: str, appended: Appended, leaf: dict) -> Receipt:
    """The receipt of a leaf just appended: the leaf, its inclusion proof and the checkpoint of the log it
    made (signed by the log key)."""
    note = sign_checkpoint(CheckpointValue(origin, appended.size, appended.root), keys.log)
    return Receipt(leaf, appended.index, appended.proof, note)
