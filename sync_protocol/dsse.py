"""DSSE envelopes (secure-systems-lab/dsse protocol v1.0.2) for everything a tmis party signs.

* The signature covers ``PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type SP len(body) SP body``,
  so a signature for one payload type can never be replayed as another (cross-type confusion).
* Envelope JSON: ``{"payload": b64, "payloadType": str, "signatures": [{"keyid": str, "sig": b64}]}``,
  serialised canonically (RFC 8785) by :func:`encode_envelope`.
* Verification (:func:`verify_envelope`) checks the payload type **before** anything else, then counts
  **unique trusted keys** with a valid signature: a signature whose ``keyid`` is not a trusted key is
  ignored (so extra signatures — a witness, a rotated key — do no harm); a signature naming a trusted key
  that fails makes the whole envelope invalid; repeating a signature counts once. The verified payload
  bytes are returned and callers parse **only those bytes** (never re-serialise the envelope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync_protocol.canonical import canonical_bytes, parse_json
from sync_protocol.errors import LimitExceededError, MalformedError, SignatureError
from sync_protocol.keys import PublicKey, Signer, b64decode, b64encode

MAX_SIGNATURES = 16

BATCH_PAYLOAD_TYPE = "application/vnd.tmis.batch-header.v1+json"
TRUST_PAYLOAD_TYPE = "application/vnd.tmis.trust.v1+json"
INBOX_PAYLOAD_TYPE = "application/vnd.tmis.inbox-message.v1+json"
TRANSFER_PAYLOAD_TYPE = "application/vnd.tmis.transfer-message.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": k, "sig": b64encode(s)} for k, s in self.signatures],
        }


def sign_envelope(payload: bytes, payload_type: str, signers: Iterable[Signer]) -> Envelope:
    message = pae(payload_type, payload)
    sigs = tuple((s.keyid, s.sign(message)) for s in signers)
    if not sigs:
        raise MalformedError("an envelope needs at least one signature")
    return Envelope(payload, payload_type, sigs)


def encode_envelope(env: Envelope) -> bytes:
    return canonical_bytes(env.to_json())


def envelope_from_json(obj: Any) -> Envelope:
    if not isinstance(obj, dict) or set(obj) != {"payload", "payloadType", "signatures"}:
        raise MalformedError("an envelope has exactly payload, payloadType and signatures")
    if not isinstance(obj["payloadType"], str):
        raise MalformedError("payloadType must be a string")
    sigs = obj["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise MalformedError("signatures must be a non-empty list")
    if len(sigs) > MAX_SIGNATURES:
        raise LimitExceededError(f"more than {MAX_SIGNATURES} signatures", count=len(sigs))
    parsed = []
    for s in sigs:
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
            raise MalformedError("a signature is {keyid, sig}")
        parsed.append((s["keyid"], b64decode(s["sig"], "signature")))
    return Envelope(b64decode(obj["payload"], "payload"), obj["payloadType"], tuple(parsed))


def parse_envelope(data: bytes) -> Envelope:
    return envelope_from_json(parse_json(data))


def parse_canonical_envelope(data: bytes) -> Envelope:
    """An envelope received as bytes that a node stores as received (line 1 of a batch file, a transfer
    message): it must be exactly its canonical encoding (docs/protocol.md §3), so the stored bytes have one
    form. Raises MalformedError otherwise."""
    env = parse_envelope(data)
    if encode_envelope(env) != data:
        raise MalformedError("the envelope is not in canonical form (RFC 8785, docs/protocol.md §3)")
    return env


def verify_envelope(env: Envelope, payload_type: str, keys: Mapping[str, PublicKey], threshold: int) -> frozenset[str]:
    """Verify ``env`` against trusted ``keys``; return the ids of the keys whose signatures verified.

    Raises:
        SignatureError: wrong payload type, a trusted key's signature fails, or fewer than ``threshold``
            unique trusted keys signed.
    """
    if threshold < 1:
        raise SignatureError("threshold must be at least 1")
    if env.payload_type != payload_type:
        raise SignatureError("unexpected payload type", expected=payload_type, got=env.payload_type[:100])
    message = pae(env.payload_type, env.payload)
    good: set[str] = set()
    for keyid, sig in env.signatures:
        key = keys.get(keyid)
        if key is None:
            continue  # unknown signer: ignored, never counted
        if not key.verify(sig, message):
            raise SignatureError("a signature from a trusted key does not verify", keyid=keyid)
        good.add(keyid)
    if len(good) < threshold:
        raise SignatureError(
            f"{len(good)} valid signature(s) from trusted keys, {threshold} required",
            valid=len(good),
            threshold=threshold,
        )
    return frozenset(good)
