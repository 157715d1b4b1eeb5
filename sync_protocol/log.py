"""The national acceptance log: leaves, signed checkpoints (C2SP tlog-checkpoint), receipts.

**Leaves** (canonical JSON; leaf hash = RFC 6962 ``leaf_hash(bytes)``), in log order:

* batch leaf ``{"type": "batch", "province", "seq", "batch_hash", "accepted_at", "trust_version"}`` — the
  acceptance time is *inside* the leaf, so it cannot be changed without changing the root;
* message leaf ``{"type": "message", "province", "kind", "transfer_id", "message_hash", "accepted_at",
  "trust_version"}`` — a province-signed transfer message (:mod:`sync_protocol.transfer`) the node accepted;
* trust leaf ``{"type": "trust", "version", "trust_hash", "accepted_at"}`` — every trust version is logged
  when the national node starts using it, so key history is ordered against batches: a batch leaf's
  ``trust_version`` must be the newest trust leaf before it.

**Checkpoint** (C2SP signed note)::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n
    \\n
    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The key name is the log origin; the 4-byte key hash is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.
A verifier ignores signature lines of unknown keys, rejects the note if a known key's signature fails,
and needs at least one valid known signature. tmis checkpoints carry no extension lines.

**Receipt** (canonical JSON) = the leaf, its index, the inclusion proof (hex hashes, at most 63) and the
signed checkpoint it is proven against. It needs no signature of its own: the checkpoint is signed and the
proof binds the leaf to it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sync_protocol import PROTOCOL, merkle
from sync_protocol._schema import exact_keys, hex_hash, integer, one_of, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical, parse_json
from sync_protocol.errors import LimitExceededError, MalformedError, ProofError, SignatureError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import PublicKey, Signer, b64decode

MAX_PROOF = 63
MAX_NOTE_SIGNATURES = 16
MAX_NOTE_BYTES = 16 * 1024
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}\Z")


# ----------------------------------------------------------------------------------------------- leaves


def batch_leaf(*, province: str, seq: int, batch_hash: str, accepted_at: dt.datetime, trust_version: int) -> dict:
    return {
        "type": "batch",
        "province": province,
        "seq": seq,
        "batch_hash": batch_hash,
        "accepted_at": format_time(accepted_at),
        "trust_version": trust_version,
    }


def trust_leaf(*, version: int, trust_hash: str, accepted_at: dt.datetime) -> dict:
    return {"type": "trust", "version": version, "trust_hash": trust_hash, "accepted_at": format_time(accepted_at)}


def message_leaf(
    *, province: str, kind: str, transfer_id: str, message_hash: str, accepted_at: dt.datetime, trust_version: int
) -> dict:
    return {
        "type": "message",
        "province": province,
        "kind": kind,
        "transfer_id": transfer_id,
        "message_hash": message_hash,
        "accepted_at": format_time(accepted_at),
        "trust_version": trust_version,
    }


def check_leaf(obj: Any) -> dict:
    """Validate a leaf object (any type)."""
    kind = one_of(obj if isinstance(obj, dict) else {}, "type", "leaf", {"batch", "trust", "message"})
    if kind == "message":
        from sync_protocol.transfer import TRANSFER_ID, UPWARD_KINDS

        exact_keys(
            obj,
            {"type", "province", "kind", "transfer_id", "message_hash", "accepted_at", "trust_version"},
            "message leaf",
        )
        check_province(obj["province"], "leaf.province")
        one_of(obj, "kind", "leaf", set(UPWARD_KINDS))
        string(obj, "transfer_id", "leaf", pattern=TRANSFER_ID)
        hex_hash(obj, "message_hash", "leaf")
        integer(obj, "trust_version", "leaf", minimum=1)
    elif kind == "batch":
        exact_keys(obj, {"type", "province", "seq", "batch_hash", "accepted_at", "trust_version"}, "batch leaf")
        check_province(obj["province"], "leaf.province")
        integer(obj, "seq", "leaf", minimum=1)
        hex_hash(obj, "batch_hash", "leaf")
        integer(obj, "trust_version", "leaf", minimum=1)
    else:
        exact_keys(obj, {"type", "version", "trust_hash", "accepted_at"}, "trust leaf")
        integer(obj, "version", "leaf", minimum=1)
        hex_hash(obj, "trust_hash", "leaf")
    time(obj, "accepted_at", "leaf")
    return obj


def leaf_bytes(leaf: Mapping[str, Any]) -> bytes:
    return canonical_bytes(check_leaf(dict(leaf)))


def leaf_hash_of(leaf: Mapping[str, Any]) -> bytes:
    return merkle.leaf_hash(leaf_bytes(leaf))


# ------------------------------------------------------------------------------------------ checkpoints


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def note_key_hash(name: str, key: PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + key.raw).digest()[:4]


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    body = cp.body()
    sig = signer.sign(body.encode())
    stamp = base64.b64encode(note_key_hash(cp.origin, signer.public) + sig).decode()
    return f"{body}\n\u2014 {cp.origin} {stamp}\n"


def verify_checkpoint(note: str, *, origin: str, keys: Mapping[str, PublicKey]) -> Checkpoint:
    """Verify a signed checkpoint note of log ``origin`` against the log ``keys``; return the checkpoint.

    Raises:
        MalformedError: not a well-formed note or checkpoint body.
        SignatureError: a known key's signature fails, or no known key signed.
    """
    if not isinstance(note, str) or len(note.encode()) > MAX_NOTE_BYTES:
        raise LimitExceededError("checkpoint note missing or too large")
    body, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise MalformedError("a signed note is a body, a blank line and signature lines")
    body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) != 3:
        raise MalformedError("a tmis checkpoint body has exactly 3 lines (origin, size, root)")
    if lines[0] != origin:
        raise MalformedError("checkpoint is for another log", expected=origin, got=lines[0][:200])
    if not re.fullmatch(r"0|[1-9][0-9]{0,15}", lines[1]):
        raise MalformedError("checkpoint size must be a decimal without leading zeros")
    root = b64decode(lines[2], "checkpoint root")
    if len(root) != merkle.HASH_SIZE:
        raise MalformedError("checkpoint root must be a SHA-256 hash")
    sig_lines = sigs[:-1].split("\n")
    if len(sig_lines) > MAX_NOTE_SIGNATURES:
        raise LimitExceededError("too many signature lines")
    by_hash = {note_key_hash(origin, k): k for k in keys.values()}
    valid = 0
    for line in sig_lines:
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if not m or not _B64.match(m.group(2)):
            raise MalformedError("malformed signature line")
        raw = b64decode(m.group(2), "note signature")
        if len(raw) < 5:
            raise MalformedError("note signature too short")
        key = by_hash.get(raw[:4]) if m.group(1) == origin else None
        if key is None:
            continue  # unknown signer (a witness, a rotated key): ignored
        if not key.verify(raw[4:], body.encode()):
            raise SignatureError("a checkpoint signature from a known log key does not verify")
        valid += 1
    if valid == 0:
        raise SignatureError("checkpoint not signed by a known log key")
    return Checkpoint(origin, int(lines[1]), root)


# ----------------------------------------------------------------------------------------------- receipts


@dataclass(frozen=True)
class Receipt:
    leaf: dict
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint_note: str

    def to_bytes(self) -> bytes:
        return canonical_bytes(
            {
                "protocol": PROTOCOL,
                "type": "receipt",
                "leaf": self.leaf,
                "leaf_index": self.leaf_index,
                "inclusion_proof": [h.hex() for h in self.inclusion_proof],
                "checkpoint": self.checkpoint_note,
            }
        )


def parse_receipt(data: bytes) -> Receipt:
    obj = parse_json(data)
    exact_keys(obj, {"protocol", "type", "leaf", "leaf_index", "inclusion_proof", "checkpoint"}, "receipt")
    if obj["protocol"] != PROTOCOL or obj["type"] != "receipt":
        raise MalformedError(f"not a {PROTOCOL} receipt")
    proof = obj["inclusion_proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise LimitExceededError(f"inclusion proof must be a list of at most {MAX_PROOF} hashes")
    hashes = tuple(bytes.fromhex(hex_hash({"h": h}, "h", "receipt.inclusion_proof")) for h in proof)
    if not isinstance(obj["checkpoint"], str):
        raise MalformedError("receipt.checkpoint must be a signed note")
    return Receipt(check_leaf(obj["leaf"]), integer(obj, "leaf_index", "receipt"), hashes, obj["checkpoint"])


def verify_receipt(data: bytes, *, origin: str, log_keys: Mapping[str, PublicKey]) -> tuple[Receipt, Checkpoint]:
    """Verify a receipt: the checkpoint's signature, then the leaf's inclusion in it.

    Raises MalformedError, SignatureError or ProofError.
    """
    receipt = parse_receipt(data)
    cp = verify_checkpoint(receipt.checkpoint_note, origin=origin, keys=log_keys)
    merkle.verify_inclusion(leaf_hash_of(receipt.leaf), receipt.leaf_index, cp.size, receipt.inclusion_proof, cp.root)
    return receipt, cp


def consistency_proof_bytes(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> bytes:
    return canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "consistency",
            "old_size": old.size,
            "new_size": new.size,
            "proof": [h.hex() for h in proof],
        }
    )


def parse_consistency_proof(data: bytes) -> tuple[int, int, tuple[bytes, ...]]:
    obj = parse_canonical(data)
    exact_keys(obj, {"protocol", "type", "old_size", "new_size", "proof"}, "consistency proof")
    if obj["protocol"] != PROTOCOL or obj["type"] != "consistency":
        raise MalformedError(f"not a {PROTOCOL} consistency proof")
    proof = obj["proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise LimitExceededError(f"consistency proof must be a list of at most {MAX_PROOF} hashes")
    return (
        integer(obj, "old_size", "consistency proof"),
        integer(obj, "new_size", "consistency proof"),
        tuple(bytes.fromhex(hex_hash({"h": h}, "h", "consistency proof")) for h in proof),
    )


def verify_checkpoint_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """The new checkpoint extends the old one. A smaller new size (truncation) or a different root at
    the same size (a fork) raises ProofError; the two signed checkpoints are the evidence."""
    if new.size < old.size:
        raise ProofError("the log shrank (truncated log)", old_size=old.size, new_size=new.size)
    if len(proof) > MAX_PROOF:
        raise LimitExceededError("consistency proof too long")
    if old.size == 0:
        if proof:
            raise ProofError("consistency from the empty log needs an empty proof")
        return
    merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)


# ------------------------------------------------------------------------------- an in-memory log (pure)


class MemoryLog:
    """An append-only log held in memory: for tests, simulators and the vector generator. The national
    node keeps the same leaves in its database and uses the same functions."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.leaves: list[dict] = []
        self.hashes: list[bytes] = []

    def append(self, leaf: dict) -> int:
        self.hashes.append(leaf_hash_of(leaf))
        self.leaves.append(leaf)
        return len(self.leaves) - 1

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        n = len(self.hashes) if size is None else size
        return Checkpoint(self.origin, n, merkle.root(self.hashes[:n]))

    def receipt(self, index: int, signer: Signer, size: int | None = None) -> Receipt:
        n = len(self.hashes) if size is None else size
        note = sign_checkpoint(self.checkpoint(n), signer)
        return Receipt(self.leaves[index], index, tuple(merkle.inclusion_proof(index, self.hashes[:n])), note)

    def consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        n = len(self.hashes) if new_size is None else new_size
        return merkle.consistency_proof(old_size, self.hashes[:n]) if old_size else []


def leaves_from_lines(lines: Iterable[bytes]) -> list[dict]:
    """Parse a leaves file (one canonical leaf per line)."""
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(check_leaf(parse_canonical(line)))
        except MalformedError as e:
            raise MalformedError(f"leaf {i}: {e.message}", index=i) from None
    return out
