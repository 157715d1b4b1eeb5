"""The digest of a province's core view (docs/protocol.md §16): a fixed-shape Merkle tree over
(teacher number, version, record hash) that both tiers compute from their own store, compare by root, and
descend where they differ — never sending everything.

Shape (fixed, so a change touches one bucket and the path above it: computable incrementally):

* **leaf** of a teacher number ``tn`` held at ``version`` by a record whose hash is ``record_hash``
  (``leaf_hash`` of the record's canonical bytes, as in a batch): the ASCII line
  ``"<tn> <version> <record_hash hex>\\n"``;
* **bucket** ``b`` (0 … 65535) of ``tn``: the first two bytes of SHA-256(``tn``), big-endian;
  ``bucket_digest = SHA-256(0x00 ‖ the bucket's leaf lines sorted by teacher number)``;
* **node** ``n`` (0 … 255, the buckets ``256·n … 256·n + 255``): ``SHA-256(0x01 ‖ its 256 bucket digests)``;
* **root**: ``SHA-256(0x02 ‖ the 256 node digests)``.

An empty bucket's digest is ``SHA-256(0x00)``. Digests travel as lowercase hex. The descent: the root, then
the 256 node digests, then for each differing node its 256 bucket digests, then for each differing bucket its
leaves — the teacher numbers whose (version, record hash) differ, or that one side lacks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sync_protocol.errors import LimitExceededError, MalformedError
from sync_protocol.identifiers import check_teacher_number

BUCKETS = 65536
FANOUT = 256
MAX_BUCKET_LEAVES = 10_000  # leaves one bucket answer may carry (a million teachers fill a bucket with ~15)
MAX_BUCKETS_PER_ROUND = 64  # differing buckets a province descends into in one round
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
EMPTY_BUCKET = hashlib.sha256(b"\x00").hexdigest()
EMPTY_NODE = hashlib.sha256(b"\x01" + bytes.fromhex(EMPTY_BUCKET) * FANOUT).hexdigest()


@dataclass(frozen=True, order=True)
class Leaf:
    teacher_number: str
    version: int
    record_hash: str

    def line(self) -> bytes:
        return f"{self.teacher_number} {self.version} {self.record_hash}\n".encode("ascii")

    def to_json(self) -> list:
        return [self.teacher_number, self.version, self.record_hash]


def bucket_of(teacher_number: str) -> int:
    return int.from_bytes(hashlib.sha256(teacher_number.encode("ascii")).digest()[:2], "big")


def bucket_digest(leaves: Iterable[Leaf]) -> str:
    h = hashlib.sha256(b"\x00")
    for leaf in sorted(leaves):
        h.update(leaf.line())
    return h.hexdigest()


def node_digests(buckets: Mapping[int, str]) -> list[str]:
    """The 256 node digests from the digests of the non-empty buckets."""
    out = []
    for n in range(FANOUT):
        children = [buckets.get(b, EMPTY_BUCKET) for b in range(n * FANOUT, (n + 1) * FANOUT)]
        if all(c == EMPTY_BUCKET for c in children):
            out.append(EMPTY_NODE)
        else:
            out.append(hashlib.sha256(b"\x01" + b"".join(bytes.fromhex(c) for c in children)).hexdigest())
    return out


def root_of(nodes: list[str]) -> str:
    return hashlib.sha256(b"\x02" + b"".join(bytes.fromhex(n) for n in nodes)).hexdigest()


def bucket_children(buckets: Mapping[int, str], node: int) -> list[str]:
    return [buckets.get(b, EMPTY_BUCKET) for b in range(node * FANOUT, (node + 1) * FANOUT)]


def differing(mine: list[str], theirs: list[str]) -> list[int]:
    if len(mine) != len(theirs):
        raise MalformedError(f"a digest level has {FANOUT} entries", got=len(theirs))
    return [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]


def compare_leaves(mine: Iterable[Leaf], theirs: Iterable[Leaf]) -> list[dict]:
    """The teacher numbers whose leaves differ: ``{teacher_number, mine, theirs}`` with each side's version
    (None where that side has no leaf), sorted by teacher number."""
    a = {x.teacher_number: x for x in mine}
    b = {x.teacher_number: x for x in theirs}
    out = []
    for tn in sorted(a.keys() | b.keys()):
        x, y = a.get(tn), b.get(tn)
        if x != y:
            out.append({"teacher_number": tn, "mine": x.version if x else None, "theirs": y.version if y else None})
    return out


# ---------------------------------------------------------------------------------------- wire values


def check_digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise MalformedError(f"{what} must be 64 lowercase hex characters")
    return value


def check_level(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) != FANOUT:
        raise MalformedError(f"{what} must be a list of {FANOUT} digests")
    return [check_digest(v, what) for v in value]


def check_index(value: object, what: str, bound: int) -> int:
    if type(value) is not int or not 0 <= value < bound:
        raise MalformedError(f"{what} must be an integer from 0 to {bound - 1}")
    return value


def leaves_from_json(value: object, bucket: int) -> list[Leaf]:
    """A bucket's leaves as sent: ``[[teacher_number, version, record_hash], …]``, each in ``bucket``,
    no teacher number twice."""
    if not isinstance(value, list):
        raise MalformedError("leaves must be a list")
    if len(value) > MAX_BUCKET_LEAVES:
        raise LimitExceededError(f"more than {MAX_BUCKET_LEAVES} leaves in one bucket", count=len(value))
    out, seen = [], set()
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise MalformedError("a leaf is [teacher_number, version, record_hash]")
        tn, version, rh = item
        check_teacher_number(tn)
        if type(version) is not int or version < 1 or version > 2**53 - 1:
            raise MalformedError("a leaf's version is an integer >= 1")
        check_digest(rh, "record_hash")
        if bucket_of(tn) != bucket or tn in seen:
            raise MalformedError("a leaf is not in the bucket, or a teacher number is given twice", teacher_number=tn)
        seen.add(tn)
        out.append(Leaf(tn, version, rh))
    return out
