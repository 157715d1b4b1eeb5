"""Trust versions received from the national node: verified as a chain before they are stored."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import ConflictError
from provincial_node.sync.models import TrustDoc
from sync_protocol.dsse import parse_envelope
from sync_protocol.errors import TrustError
from sync_protocol.trust import TrustMetadata, extend_trust_chain, trust_from_payload, verify_trust_chain

# The chains this process verified, by the hash of their pinned first version (several nodes may share a process:
# the tests): a stored version never changes (store_trust refuses a different document under a known version), so
# a chain verified once is only extended. Without it every trust message pulled, every round and every metrics
# scrape verified the whole chain again — with 32 provinces enrolling, each province's pull verified 33 versions
# 32 times over.
_CHAINS: dict[bytes, list[TrustMetadata]] = {}
_CHAINS_LOCK = threading.Lock()
_MAX_CACHED = 64


def _verified(docs: list[bytes]) -> list[TrustMetadata]:
    """``docs`` (every version, oldest first) verified as a chain, reusing the longest chain verified before
    whose documents they begin with, byte for byte."""
    key = hashlib.sha256(docs[0]).digest()
    with _CHAINS_LOCK:
        known = _CHAINS.get(key, [])
    n = len(known)
    if 0 < n <= len(docs) and all(t.envelope == d for t, d in zip(known, docs, strict=False)):
        chain = known if n == len(docs) else extend_trust_chain(known, docs[n:])
    else:
        chain = verify_trust_chain(docs)
    with _CHAINS_LOCK:
        if key not in _CHAINS and len(_CHAINS) >= _MAX_CACHED:
            _CHAINS.pop(next(iter(_CHAINS)))
        if len(chain) >= len(_CHAINS.get(key, [])):
            _CHAINS[key] = chain
    return chain


def trust_chain(session: Session) -> list[TrustMetadata]:
    """Every stored trust version, verified from the pinned first one."""
    docs = list(session.scalars(select(TrustDoc.envelope).order_by(TrustDoc.version)))
    if not docs:
        raise ConflictError("the node is not enrolled: run `tmis province sync enrol`")
    return _verified(docs)


def store_trust(session: Session, documents: list[bytes]) -> TrustMetadata:
    """Verify and store trust versions: the first enrolment pins version 1 (trust on first use: compare
    the root key ids with the ministry's published ones); later ones must extend the stored chain. A version
    heard of again is skipped; a different document under a known version is refused."""
    known = {k.version: k.envelope for k in session.scalars(select(TrustDoc).order_by(TrustDoc.version))}
    fresh = []
    for doc in documents:
        env = parse_envelope(doc)
        version = trust_from_payload(env.payload, doc).version
        if version in known:
            if parse_envelope(known[version]).payload != env.payload:
                raise TrustError(f"a different trust document for known version {version}", version=version)
            continue
        fresh.append((version, doc))
    chain = _verified([*known.values(), *(doc for _v, doc in sorted(fresh, key=lambda vd: vd[0]))])
    for t in chain:
        if t.version not in known:
            session.add(TrustDoc(version=t.version, envelope=t.envelope))
            known[t.version] = t.envelope
    return chain[-1]
