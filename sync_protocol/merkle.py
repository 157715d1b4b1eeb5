"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs.

* leaf hash ``MTH({d}) = SHA-256(0x00 || d)``; interior node ``SHA-256(0x01 || left || right)``; the
  empty tree hashes to ``SHA-256()``; a tree of n > 1 leaves splits at k, the largest power of two < n.
* :func:`verify_inclusion` and :func:`verify_consistency` transcribe RFC 9162 §2.1.3.2 and §2.1.4.2. They
  check the proof **length** (no missing or extra hashes) and that both sizes are fully consumed (the
  hash-tree bug where a verifier accepted a proof for a wrong second size), and raise
  :class:`~sync_protocol.errors.ProofError`; they never return False.
* Proof generation works on the list of leaf hashes (``leaves``); callers with large trees hand in what
  they store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sync_protocol.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the given leaf hashes (iterative, O(n) hashes, O(log n) memory per level)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    # Build bottom-up: pairing left to right reproduces RFC 6962's split at the largest power of two,
    # because an unpaired last node is carried up unchanged.
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``leaves`` (RFC 9162 §2.1.3.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ProofError("leaf index out of range", index=index, size=n)
    proof: list[bytes] = []
    lo, hi = 0, n
    path: list[tuple[int, int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi, 0))
            hi = lo + k
        else:
            path.append((lo, lo + k, 1))
            lo = lo + k
    for a, b, _side in reversed(path):
        proof.append(root(leaves[a:b]))
    return proof


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Proof that the first ``size1`` leaves are a prefix of ``leaves`` (RFC 9162 §2.1.4.1)."""
    n = len(leaves)
    if not 0 < size1 <= n:
        raise ProofError("consistency proof needs 0 < size1 <= size2", size1=size1, size2=n)
    if size1 == n:
        return []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        size = hi - lo
        if m == size:
            return [] if complete else [root(leaves[lo:hi])]
        k = _split(size)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), root(leaves[lo + k : hi])]
        return [*subproof(m - k, lo + k, hi, False), root(leaves[lo : lo + k])]

    return subproof(size1, 0, n, True)


def frontier(leaves: Sequence[bytes]) -> list[bytes]:
    """The compact form of a tree of ``leaves``: the roots of its perfect subtrees from left to right, one per
    1-bit of ``len(leaves)``, largest first — O(log n) hashes that are all :func:`append`, :func:`frontier_root`
    and the newest leaf's proof need (so a log that only grows never reads its old leaves again)."""
    out: list[bytes] = []
    for i, h in enumerate(leaves):
        out = append(out, i, h)
    return out


def append(front: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The frontier of the tree of ``size`` leaves with ``leaf`` (a leaf hash) appended as leaf number ``size``:
    each trailing 1-bit of ``size`` is a perfect subtree of the same height as the carry, merged into it."""
    if len(front) != size.bit_count():
        raise ProofError("frontier does not match its size", size=size, hashes=len(front))
    out, carry = list(front), leaf
    n = size
    while n & 1:
        carry = node_hash(out.pop(), carry)
        n >>= 1
    out.append(carry)
    return out


def frontier_root(front: Sequence[bytes]) -> bytes:
    """The root of the tree whose frontier is ``front`` (RFC 6962 splits at the largest power of two, which is
    the leftmost perfect subtree, so the root folds the frontier from the right)."""
    if not front:
        return EMPTY_ROOT
    acc = front[-1]
    for h in reversed(front[:-1]):
        acc = node_hash(h, acc)
    return acc


def newest_leaf_proof(front_before: Sequence[bytes]) -> list[bytes]:
    """The inclusion proof of leaf ``n`` in the tree of ``n + 1`` leaves, given the frontier of the first ``n``:
    on the path from the newest leaf every sibling is on its left and is one of those perfect subtrees,
    nearest (smallest) first."""
    return list(reversed(front_before))


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for h in proof:
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ProofError(f"{what}: every proof element must be a {HASH_SIZE}-byte hash")


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Lengths of the inner and border parts of the inclusion proof of ``index`` in a tree of ``size``.

    Inner: levels below the point where the paths to ``index`` and ``size-1`` diverge (siblings on either
    side); border: one left sibling per 1-bit of ``index`` above it. Their sum is the exact proof length.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like _chain_inner but only left siblings: the hash of the earlier (smaller) version of the subtree."""
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def _match(calculated: bytes, expected: bytes, what: str, **details: object) -> None:
    if calculated != expected:
        raise ProofError(f"{what} does not lead to the expected root", **details)


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof; raises ProofError on a malformed proof (RFC 9162 §2.1.3.2)."""
    _check_hashes(proof, "inclusion")
    if not 0 <= index < size:
        raise ProofError("leaf index out of range", index=index, size=size)
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash has the wrong size")
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong inclusion proof length {len(proof)}, want {inner + border}", index=index, size=size)
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Raises ProofError unless ``leaf`` (a leaf hash) is at ``index`` of the tree of ``size``/``expected_root``."""
    _match(root_from_inclusion(leaf, index, size, proof), expected_root, "inclusion proof", index=index, size=size)


def valid_subtree(start: int, end: int) -> bool:
    """[start, end) is a subtree when start <= end and start is a multiple of bit_ceil(end - start)
    (an empty range is the empty subtree)."""
    if not 0 <= start <= end:
        return False
    if start == end:
        return True
    width = 1 << (end - start - 1).bit_length()
    return start % width == 0


def verify_subtree_inclusion(
    leaf: bytes, index: int, start: int, end: int, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """Inclusion of leaf ``index`` in the subtree [start, end) whose hash is ``subtree_root``."""
    if not valid_subtree(start, end):
        raise ProofError("invalid subtree", start=start, end=end)
    if not start <= index < end:
        raise ProofError("index outside the subtree", index=index, start=start, end=end)
    _match(root_from_inclusion(leaf, index - start, end - start, proof), subtree_root, "subtree inclusion proof")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2: raises ProofError unless tree ``size1``/``root1`` is a prefix of ``size2``/``root2``.

    A proof from the empty tree is meaningless and refused (every tree extends it).
    """
    _check_hashes(proof, "consistency")
    if size2 < size1:
        raise ProofError("size1 is greater than size2", size1=size1, size2=size2)
    if size1 <= 0:
        raise ProofError("a consistency proof from the empty tree is meaningless", size1=size1)
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof", size1=size1)
        _match(root1, root2, "consistency proof (equal sizes)", size1=size1)
        return
    if not proof:
        raise ProofError("empty consistency proof for different sizes", size1=size1, size2=size2)
    _match(
        _root_from_subtree_consistency(0, size1, size2, proof, root1),
        root2,
        "consistency proof",
        size1=size1,
        size2=size2,
    )


def verify_subtree_consistency(
    start: int, end: int, size: int, proof: Sequence[bytes], subtree_root: bytes, tree_root: bytes
) -> None:
    """The subtree [start, end) with hash ``subtree_root`` sits at those positions in the tree of ``size``."""
    _check_hashes(proof, "subtree consistency")
    if not valid_subtree(start, end):
        raise ProofError("invalid subtree", start=start, end=end)
    if size < end:
        raise ProofError("tree smaller than the subtree", end=end, size=size)
    if start == end:  # the empty subtree is part of every tree: nothing to prove
        if proof:
            raise ProofError("the empty subtree needs an empty proof")
        _match(subtree_root, EMPTY_ROOT, "empty subtree")
        return
    if start == 0 and end == size:
        if proof:
            raise ProofError("the subtree is the whole tree: the proof must be empty")
        _match(subtree_root, tree_root, "subtree consistency proof")
        return
    if not proof:
        raise ProofError("empty subtree consistency proof")
    _match(
        _root_from_subtree_consistency(start, end, size, proof, subtree_root), tree_root, "subtree consistency proof"
    )


def _root_from_subtree_consistency(start: int, end: int, size: int, proof: Sequence[bytes], sub_root: bytes) -> bytes:
    """The tree root implied by a (subtree) consistency proof; checks that the proof's nodes inside the
    subtree chain to ``sub_root``. A plain consistency proof is the subtree [0, size1)."""
    if end == size:
        height = ((end - 1) ^ start).bit_length()
        want = bin(start >> height).count("1")  # one left sibling per level where the subtree is a right child
        if len(proof) != want:
            raise ProofError(f"wrong proof length {len(proof)}, want {want}")
        return _chain_border_right(sub_root, proof)
    fork_level, border = _decompose(end - 1, size)
    shift = _trailing_zeros(end - start)
    inner = fork_level - shift
    seed, p_start = proof[0], 1
    if end - start == 1 << shift:  # a perfect subtree: its root is known, not sent
        seed, p_start = sub_root, 0
    if len(proof) != p_start + inner + border:
        raise ProofError(f"wrong proof length {len(proof)}, want {p_start + inner + border}")
    rest = proof[p_start:]
    mask = (end - 1) >> shift
    if p_start == 1:
        height = ((end - 1) ^ start).bit_length()
        sub_inner = min(height, fork_level) - shift
        sub_border = max(0, border - bin((end - 1) >> height).count("1"))
        hash1 = _chain_inner_right(seed, rest[:sub_inner], mask)
        hash1 = _chain_border_right(hash1, rest[inner : inner + sub_border])
        _match(hash1, sub_root, "consistency proof (first root)")
    return _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
