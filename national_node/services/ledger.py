"""The national node's keys, trust versions and acceptance log (DB-backed; rules in docs/protocol.md).

Keys live in ``<data dir>/keys`` as 0600 PEM files: three root keys (threshold 2 — in a real deployment the
root keys are kept offline and only brought in to sign a new trust version), the log key (checkpoints) and
the message key (inbox messages).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.keyfile import read_private_key, write_private_key
from national_node.models import LogLeaf, NodeSetting, ProvinceKey, TrustVersion
from sync_protocol import merkle
from sync_protocol.keys import PublicKey, Signer, b64decode
from sync_protocol.log import Checkpoint as CheckpointValue
from sync_protocol.log import Receipt, leaf_bytes, sign_checkpoint, trust_leaf
from sync_protocol.trust import TrustMetadata, build_trust, load_pinned_trust

ROOT_KEYS, ROOT_THRESHOLD = 3, 2
TRUST_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class NodeKeys:
    roots: tuple[Signer, ...]
    log: Signer
    messages: Signer


def key_files(keys_dir: Path) -> dict[str, Path]:
    names = [f"root-{i}" for i in range(1, ROOT_KEYS + 1)] + ["log", "messages"]
    return {n: keys_dir / f"{n}.key" for n in names}


def generate_keys(keys_dir: Path) -> NodeKeys:
    signers = {}
    for name, path in key_files(keys_dir).items():
        signers[name] = Signer.generate()
        write_private_key(path, signers[name].to_pem())
    return NodeKeys(tuple(signers[f"root-{i}"] for i in range(1, ROOT_KEYS + 1)), signers["log"], signers["messages"])


@cache
def load_keys(keys_dir: Path) -> NodeKeys:
    files = key_files(keys_dir)
    s = {n: Signer.from_pem(read_private_key(p)) for n, p in files.items()}
    return NodeKeys(tuple(s[f"root-{i}"] for i in range(1, ROOT_KEYS + 1)), s["log"], s["messages"])


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
    provinces: dict[str, tuple[int, list[PublicKey]]] = {}
    for k in session.scalars(select(ProvinceKey).where(ProvinceKey.revoked_at.is_(None)).order_by(ProvinceKey.keyid)):
        provinces.setdefault(k.province_code, (1, []))[1].append(PublicKey(b64decode(k.public_key, "public key")))
    envelope = build_trust(
        version=latest + 1,
        issued_at=now,
        expires=now + TRUST_VALIDITY,
        root_keys=[r.public for r in keys.roots],
        root_threshold=ROOT_THRESHOLD,
        log_origin=log_origin,
        log_keys=[keys.log.public],
        message_keys=[keys.messages.public],
        provinces=provinces,
        signers=keys.roots[:ROOT_THRESHOLD],
    )
    trust = _parse_trust(envelope)
    session.add(TrustVersion(version=trust.version, envelope=envelope, trust_hash=trust.hash, reason=reason))
    append_leaf(session, trust_leaf(version=trust.version, trust_hash=trust.hash, accepted_at=now))
    return trust


def append_leaf(session: Session, leaf: dict) -> int:
    """Append a leaf at the next index. Appends are serialised by locking the ``log_head`` row until the
    transaction ends (provinces apply their records in parallel; only this short tail is serial), and the
    primary key on the index would refuse a second leaf at one index rather than fork the log."""
    session.execute(select(NodeSetting).where(NodeSetting.key == "log_head").with_for_update()).scalar_one()
    index = session.scalar(select(func.coalesce(func.max(LogLeaf.index), -1))) + 1
    data = leaf_bytes(leaf)
    session.add(LogLeaf(index=index, leaf=data, leaf_hash=merkle.leaf_hash(data)))
    session.flush()
    return index


def leaf_hashes(session: Session, size: int | None = None) -> list[bytes]:
    stmt = select(LogLeaf.leaf_hash).order_by(LogLeaf.index)
    if size is not None:
        stmt = stmt.where(LogLeaf.index < size)
    return list(session.scalars(stmt))


def checkpoint(session: Session, keys: NodeKeys, origin: str, size: int | None = None) -> str:
    hashes = leaf_hashes(session, size)
    return sign_checkpoint(CheckpointValue(origin, len(hashes), merkle.root(hashes)), keys.log)


def receipt(session: Session, keys: NodeKeys, origin: str, index: int, leaf: dict) -> Receipt:
    hashes = leaf_hashes(session)
    note = sign_checkpoint(CheckpointValue(origin, len(hashes), merkle.root(hashes)), keys.log)
    return Receipt(leaf, index, tuple(merkle.inclusion_proof(index, hashes)), note)
