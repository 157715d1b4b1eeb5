"""Trust metadata: root rotation rules (table-driven, after python-tuf's key-rotation tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from sync_protocol import errors as E
from sync_protocol.trust import load_pinned_trust, update_trust, verify_trust_chain
from tests.protocol.simulator import EPOCH, SimFederation, fixed_signer

R = [fixed_signer(f"root-{i}") for i in range(3)]
N = [fixed_signer(f"new-root-{i}") for i in range(3)]


@dataclass
class Rotation:
    roots: list  # root keys of version 2
    signers: list  # who signs version 2
    threshold: int = 2
    version: int = 2
    error: type[E.ProtocolError] | None = None


ROTATIONS = {
    "same keys, signed by 2 of them": Rotation(R, R[:2]),
    "all keys rotated, old and new thresholds": Rotation(N, R[:2] + N[:2]),
    "not signed by the old keys": Rotation(N, N[:3], error=E.TrustError),
    "not signed by the new keys": Rotation(N, R[:3], error=E.TrustError),
    "old threshold not reached": Rotation(N, R[:1] + N[:3], error=E.TrustError),
    "new threshold not reached (raised to 3)": Rotation(R, R[:2], threshold=3, error=E.TrustError),
    "threshold raised to 3 and met": Rotation(R, R[:3], threshold=3),
    "version skip (1 → 3)": Rotation(R, R[:2], version=3, error=E.TrustError),
    "same version again": Rotation(R, R[:2], version=1, error=E.TrustError),
    "duplicate signer cannot fake the old threshold": Rotation(N, [R[0], R[0], *N[:2]], error=E.TrustError),
}


@pytest.mark.parametrize("name", list(ROTATIONS))
def test_root_rotation(name):
    case = ROTATIONS[name]
    f = SimFederation()
    v1 = f.trust
    doc = f.publish_trust(roots=case.roots, signers=case.signers, version=case.version, root_threshold=case.threshold)
    if case.error:
        with pytest.raises(case.error):
            update_trust(v1, doc)
    else:
        assert update_trust(v1, doc).version == 2


def test_expired_trust_is_refused_for_new_use_but_history_still_walks():
    f = SimFederation()
    doc2 = f.publish_trust(expires=EPOCH + dt.timedelta(days=10))
    later = EPOCH + dt.timedelta(days=20)
    with pytest.raises(E.TrustError, match="expired"):
        update_trust(f.trust, doc2, now=later)
    with pytest.raises(E.TrustError, match="expired"):
        verify_trust_chain(f.trust_docs, now=later)
    assert [t.version for t in verify_trust_chain(f.trust_docs)] == [1, 2]  # an auditor reading history


def test_chain_walk_and_pinning():
    f = SimFederation()
    f.publish_trust()
    f.publish_trust(roots=N, signers=R[:2] + N[:2])
    f.publish_trust(roots=N, signers=N[:2])
    assert [t.version for t in verify_trust_chain(list(reversed(f.trust_docs)))] == [1, 2, 3, 4]
    # pinning a later version skips the history before it
    assert [t.version for t in verify_trust_chain(f.trust_docs, pinned=f.trust_docs[2])] == [3, 4]
    # a forged version 1 with other roots cannot be slipped in beside the pinned one
    forged = SimFederation()
    forged.roots = N
    with pytest.raises(E.TrustError):
        verify_trust_chain([f.trust_docs[0], forged.publish_trust(roots=N, signers=N[:2], version=1)])


def test_pinned_trust_needs_its_own_threshold():
    f = SimFederation()
    doc = f.publish_trust(signers=R[:1], version=1)
    with pytest.raises(E.TrustError):
        load_pinned_trust(doc)


def test_province_keys_are_scoped_and_codes_allow_listed():
    f = SimFederation()
    assert set(f.trust.province_keys("44").keys) == {f.provinces["44"].signer.keyid}
    with pytest.raises(E.KeyUntrustedError):
        f.trust.province_keys("12")
    with pytest.raises(E.MalformedError):
        f.trust.province_keys("../44")


def test_too_long_a_chain_is_refused():
    from sync_protocol import trust as T

    with pytest.raises(E.LimitExceededError):
        verify_trust_chain([b"{}"] * (T.MAX_CHAIN + 1))


def test_a_verified_chain_extends_by_its_next_versions_only():
    from sync_protocol.trust import extend_trust_chain

    f = SimFederation()
    f.publish_trust()
    f.publish_trust(roots=N, signers=R[:2] + N[:2])
    f.publish_trust(roots=N, signers=N[:2])
    head = verify_trust_chain(f.trust_docs[:2])
    full = extend_trust_chain(head, f.trust_docs[2:])
    assert [t.version for t in full] == [1, 2, 3, 4]
    assert [t.payload for t in full] == [t.payload for t in verify_trust_chain(f.trust_docs)]
    with pytest.raises(E.TrustError):  # a version skipped
        extend_trust_chain(head, f.trust_docs[3:])
    forged = SimFederation()
    forged.roots = N
    stranger = forged.publish_trust(roots=N, signers=N[:2], version=3)  # signed by roots version 2 does not list
    with pytest.raises(E.TrustError):
        extend_trust_chain(head, [stranger])
    with pytest.raises(E.TrustError):
        extend_trust_chain([], f.trust_docs)
