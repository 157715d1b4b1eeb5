"""Trust versions received from the national node: verified as a chain before they are stored."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import ConflictError
from provincial_node.sync.models import TrustDoc
from sync_protocol.dsse import parse_envelope
from sync_protocol.errors import TrustError
from sync_protocol.trust import TrustMetadata, trust_from_payload, verify_trust_chain


def trust_chain(session: Session) -> list[TrustMetadata]:
    """Every stored trust version, verified from the pinned first one."""
    docs = list(session.scalars(select(TrustDoc.envelope).order_by(TrustDoc.version)))
    if not docs:
        raise ConflictError("the node is not enrolled: run `tmis province sync enrol`")
    return verify_trust_chain(docs)


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
        fresh.append(doc)
    chain = verify_trust_chain([*known.values(), *fresh])
    for t in chain:
        if t.version not in known:
            session.add(TrustDoc(version=t.version, envelope=t.envelope))
            known[t.version] = t.envelope
    return chain[-1]
