"""Merkle tree: the public transparency-dev vectors, and round-trip properties."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol import merkle
from sync_protocol.errors import ProofError
from tests.conftest import SHARED

VECTORS = SHARED / "vectors" / "merkle" / "testdata"


def _b64(v):
    return base64.b64decode(v) if v is not None else None


def _proof(case):
    return [_b64(p) for p in (case.get("proof") or [])]


def _run(kind: str, case: dict) -> None:
    if kind == "inclusion":
        merkle.verify_inclusion(
            _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"])
        )
    elif kind == "consistency":
        merkle.verify_consistency(case["size1"], case["size2"], _proof(case), _b64(case["root1"]), _b64(case["root2"]))
    elif kind == "subtreeinclusion":
        merkle.verify_subtree_inclusion(
            _b64(case["leafHash"]), case["leafIdx"], case["start"], case["end"], _proof(case), _b64(case["root"])
        )
    else:
        merkle.verify_subtree_consistency(
            case["start"], case["end"], case["size"], _proof(case), _b64(case["root1"]), _b64(case["root2"])
        )


def _cases() -> list:
    if not VECTORS.is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"{VECTORS} absent (../shared missing)"))]
    out = []
    for path in sorted(VECTORS.rglob("*.json")):
        kind = path.relative_to(VECTORS).parts[0]
        out.append(pytest.param(kind, path, id=str(path.relative_to(VECTORS))))
    return out


@pytest.mark.parametrize(("kind", "path"), _cases())
def test_shared_vector(kind: str, path: Path):
    case = json.loads(path.read_text())
    if case["wantErr"]:
        with pytest.raises(ProofError):
            _run(kind, case)
    else:
        _run(kind, case)


def test_every_vector_family_is_present():
    if not VECTORS.is_dir():
        pytest.skip("../shared absent")
    assert {p.name for p in VECTORS.iterdir()} == {"inclusion", "consistency", "subtreeinclusion", "subtreeconsistency"}
    assert len(list(VECTORS.rglob("*.json"))) == 518


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _reference_root(leaves):
    # RFC 6962 definition, recursive, as an independent check of the iterative root()
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


@given(st.integers(min_value=0, max_value=70))
def test_root_matches_the_rfc_definition(n):
    assert merkle.root(_leaves(n)) == _reference_root(_leaves(n))


@settings(max_examples=300)
@given(st.data())
def test_any_size_index_pair_round_trips(data):
    size = data.draw(st.integers(min_value=1, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = _leaves(size)
    r = merkle.root(leaves)
    proof = merkle.inclusion_proof(index, leaves)
    merkle.verify_inclusion(leaves[index], index, size, proof, r)
    if proof:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[index], index, size, proof[:-1], r)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[index], index, size, [*proof, r], r)
    if size > 1:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[index], (index + 1) % size, size, proof, r)


@settings(max_examples=300)
@given(st.data())
def test_any_size_pair_round_trips_through_consistency(data):
    size2 = data.draw(st.integers(min_value=1, max_value=300))
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    leaves = _leaves(size2)
    r1, r2 = merkle.root(leaves[:size1]), merkle.root(leaves)
    proof = merkle.consistency_proof(size1, leaves)
    merkle.verify_consistency(size1, size2, proof, r1, r2)
    if size1 < size2:
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, proof, r2, r1)
        with pytest.raises(ProofError):  # every element must be consumed, none may be missing
            merkle.verify_consistency(size1, size2, [*proof, r1], r1, r2)
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, proof[:-1], r1, r2)
        bad = list(proof)
        bad[0] = bytes(b ^ 1 for b in bad[0])
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, bad, r1, r2)


def test_proof_lengths_are_bounded():
    # a log of 2^53 leaves still has proofs of at most 53 hashes; the protocol limit is 63
    inner, border = merkle._decompose(2**53 - 2, 2**53 - 1)
    assert inner + border <= 53


def test_the_frontier_gives_the_root_and_the_newest_leafs_proof_at_every_size():
    leaves = _leaves(300)
    front: list[bytes] = []
    for n, leaf in enumerate(leaves):
        before, front = front, merkle.append(front, n, leaf)
        assert len(front) == (n + 1).bit_count()
        assert merkle.frontier_root(front) == _reference_root(leaves[: n + 1])
        assert merkle.newest_leaf_proof(before) == merkle.inclusion_proof(n, leaves[: n + 1])
        merkle.verify_inclusion(leaf, n, n + 1, merkle.newest_leaf_proof(before), merkle.frontier_root(front))
    assert merkle.frontier(leaves) == front
    assert merkle.frontier_root([]) == merkle.EMPTY_ROOT


@pytest.mark.parametrize(("size", "hashes"), [(0, 1), (1, 0), (3, 1), (4, 2)])
def test_a_frontier_that_does_not_match_its_size_is_refused(size, hashes):
    with pytest.raises(ProofError, match="frontier does not match its size"):
        merkle.append(_leaves(hashes), size, _leaves(1)[0])
