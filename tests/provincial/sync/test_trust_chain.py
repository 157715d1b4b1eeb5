"""The stored trust chain is verified once per process and then only extended (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from provincial_node.sync import trust as trust_store
from provincial_node.sync.models import TrustDoc
from sync_protocol import errors as E
from sync_protocol import trust as T
from tests.protocol.simulator import SimFederation, fixed_signer

OTHER_ROOTS = [fixed_signer(f"other-root-{i}") for i in range(3)]


@pytest.fixture
def counted(monkeypatch):
    """How many versions after the pinned one were verified (each is one ``update_trust``)."""
    calls = {"update": 0}
    real = T.update_trust

    def update(current, data, **kw):
        calls["update"] += 1
        return real(current, data, **kw)

    monkeypatch.setattr(T, "update_trust", update)
    monkeypatch.setattr(trust_store, "_CHAINS", {})
    return calls


def _payloads(chain):
    return [t.payload for t in chain]


def test_a_chain_grown_by_one_version_verifies_that_version_only(db_session, counted):
    f = SimFederation()  # version 1
    for _ in range(4):
        f.publish_trust()  # versions 2 to 5
    trust_store.store_trust(db_session, f.trust_docs[:3])
    assert counted["update"] == 2  # versions 2 and 3, from the pinned version 1
    assert [t.version for t in trust_store.trust_chain(db_session)] == [1, 2, 3]
    assert counted["update"] == 2  # known: nothing verified again
    assert trust_store.store_trust(db_session, [f.trust_docs[3]]).version == 4  # trust messages pulled one by one
    assert trust_store.store_trust(db_session, [f.trust_docs[4]]).version == 5
    assert counted["update"] == 4
    assert _payloads(trust_store.trust_chain(db_session)) == _payloads(T.verify_trust_chain(f.trust_docs))


def test_what_the_cache_holds_never_stands_in_for_other_documents(db_session, counted):
    f = SimFederation()
    f.publish_trust()
    trust_store.store_trust(db_session, f.trust_docs)
    # another federation's node in the same process (the tests run many): its chain is verified from its own root
    other = SimFederation()
    other.trust_docs = []
    other.publish_trust(roots=OTHER_ROOTS, signers=OTHER_ROOTS[:2], version=1)
    other.publish_trust(roots=OTHER_ROOTS, signers=OTHER_ROOTS[:2])
    assert _payloads(trust_store._verified(other.trust_docs)) == _payloads(T.verify_trust_chain(other.trust_docs))
    # version 2 replaced in the table behind the node's back: the stored documents no longer begin with the cached
    # chain, so the chain is verified again from version 1, and the stranger's version 2 is refused
    db_session.get(TrustDoc, 2).envelope = other.trust_docs[1]
    db_session.flush()
    with pytest.raises(E.TrustError):
        trust_store.trust_chain(db_session)


def test_versions_offered_out_of_order_extend_the_chain_in_order(db_session, counted):
    f = SimFederation()
    for _ in range(3):
        f.publish_trust()
    trust_store.store_trust(db_session, f.trust_docs[:2])
    assert trust_store.store_trust(db_session, [f.trust_docs[3], f.trust_docs[2]]).version == 4
    db_session.execute(delete(TrustDoc))
    trust_store._CHAINS.clear()
    assert trust_store.store_trust(db_session, f.trust_docs[::-1]).version == 4  # a first enrolment, any order
