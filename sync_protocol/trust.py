"""Trust metadata: who may sign what, versioned and signed by the national root keys (TUF-style root role).

Payload (RFC 8785 JSON inside a DSSE envelope of type ``application/vnd.tmis.trust.v1+json``)::

    {"protocol": "tmis-sync/1", "type": "trust", "version": 3,
     "issued_at": "2026-01-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z",
     "root": {"threshold": 2, "keys": {<keyid>: {"keytype": "ed25519", "public": <b64>}, ...}},
     "national": {"log_origin": "tmis.moe.edu.cn/acceptance-log/v1",
                  "log_keys": {...}, "message_keys": {...}},
     "provinces": {"44": {"threshold": 1, "keys": {...}}, ...}}

Rules (enforced here; python-tuf's client workflow §5.3 is the model):

* The first trusted version is pinned out of band (shipped with the node / handed to the auditor); it must
  carry a threshold of signatures from its own root keys.
* Version N+1 is accepted only when signed by a threshold of version N's root keys **and** a threshold of
  its own root keys, its version is exactly N+1, its log origin is unchanged, and it has not expired at
  the verification time. A chain walk is bounded (``MAX_CHAIN``).
* A province key is valid only for that province's batches. Rotation: publish a version listing old and
  new keys, switch, publish a version without the old key. Revocation: a version without the key.
* Which version judges a batch is decided by the batch's position in the acceptance log (its leaf names
  the trust version in force), never by a time the signer claims.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sync_protocol import PROTOCOL
from sync_protocol._schema import exact_keys, integer, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical
from sync_protocol.dsse import (
    TRUST_PAYLOAD_TYPE,
    Envelope,
    encode_envelope,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from sync_protocol.errors import LimitExceededError, MalformedError, ProtocolError, TrustError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import PublicKey, Signer, keys_from_json, keys_to_json

MAX_CHAIN = 1024
MAX_TRUST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class KeySet:
    threshold: int
    keys: dict[str, PublicKey]

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "keys": keys_to_json(self.keys)}


@dataclass(frozen=True)
class TrustMetadata:
    version: int
    issued_at: dt.datetime
    expires: dt.datetime
    root: KeySet
    log_origin: str
    log_keys: dict[str, PublicKey]
    message_keys: dict[str, PublicKey]
    provinces: dict[str, KeySet]
    payload: bytes  # the exact signed bytes
    envelope: bytes  # the canonical envelope as distributed

    @property
    def hash(self) -> str:
        """Hex SHA-256 of the signed payload: names this version in log leaves."""
        return hashlib.sha256(self.payload).hexdigest()

    def province_keys(self, province: str) -> KeySet:
        """The keys valid for ``province``'s batches. Raises KeyUntrustedError when none are listed."""
        from sync_protocol.errors import KeyUntrustedError

        check_province(province)
        ks = self.provinces.get(province)
        if ks is None:
            raise KeyUntrustedError(
                f"trust version {self.version} lists no keys for province {province}",
                province=province,
                trust_version=self.version,
            )
        return ks

    def expired(self, at: dt.datetime) -> bool:
        return at >= self.expires


def _keyset(obj: Any, what: str) -> KeySet:
    exact_keys(obj, {"threshold", "keys"}, what)
    keys = keys_from_json(obj["keys"], f"{what}.keys")
    threshold = integer(obj, "threshold", what, minimum=1, maximum=len(keys))
    return KeySet(threshold, keys)


def trust_from_payload(payload: bytes, envelope: bytes) -> TrustMetadata:
    obj = parse_canonical(payload)
    exact_keys(obj, {"protocol", "type", "version", "issued_at", "expires", "root", "national", "provinces"}, "trust")
    if obj["protocol"] != PROTOCOL or obj["type"] != "trust":
        raise MalformedError(f"not a {PROTOCOL} trust document")
    version = integer(obj, "version", "trust", minimum=1)
    issued, expires = time(obj, "issued_at", "trust"), time(obj, "expires", "trust")
    if expires <= issued:
        raise MalformedError("trust.expires must be after trust.issued_at")
    national = exact_keys(obj["national"], {"log_origin", "log_keys", "message_keys"}, "trust.national")
    origin = string(national, "log_origin", "trust.national", max_len=200)
    if not origin.isprintable() or " " in origin:
        raise MalformedError("trust.national.log_origin must be printable without spaces")
    provinces_obj = obj["provinces"]
    if not isinstance(provinces_obj, dict):
        raise MalformedError("trust.provinces must be an object")
    provinces = {
        check_province(code, "trust.provinces"): _keyset(ks, f"trust.provinces.{code}")
        for code, ks in provinces_obj.items()
    }
    return TrustMetadata(
        version=version,
        issued_at=issued,
        expires=expires,
        root=_keyset(obj["root"], "trust.root"),
        log_origin=origin,
        log_keys=keys_from_json(national["log_keys"], "trust.national.log_keys"),
        message_keys=keys_from_json(national["message_keys"], "trust.national.message_keys"),
        provinces=provinces,
        payload=payload,
        envelope=envelope,
    )


def build_trust(
    *,
    version: int,
    issued_at: dt.datetime,
    expires: dt.datetime,
    root_keys: Sequence[PublicKey],
    root_threshold: int,
    log_origin: str,
    log_keys: Sequence[PublicKey],
    message_keys: Sequence[PublicKey],
    provinces: dict[str, tuple[int, Sequence[PublicKey]]],
    signers: Iterable[Signer],
) -> bytes:
    """Build and sign a trust document; returns the canonical DSSE envelope bytes."""
    payload = canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "trust",
            "version": version,
            "issued_at": format_time(issued_at),
            "expires": format_time(expires),
            "root": {"threshold": root_threshold, "keys": keys_to_json(list(root_keys))},
            "national": {
                "log_origin": log_origin,
                "log_keys": keys_to_json(list(log_keys)),
                "message_keys": keys_to_json(list(message_keys)),
            },
            "provinces": {
                code: {"threshold": t, "keys": keys_to_json(list(ks))} for code, (t, ks) in provinces.items()
            },
        }
    )
    trust_from_payload(payload, b"")  # never sign something we would refuse to load
    return encode_envelope(sign_envelope(payload, TRUST_PAYLOAD_TYPE, signers))


def _parse(data: bytes) -> tuple[Envelope, TrustMetadata]:
    if len(data) > MAX_TRUST_BYTES:
        raise LimitExceededError(f"trust document larger than {MAX_TRUST_BYTES} bytes", size=len(data))
    env = parse_envelope(data)
    if env.payload_type != TRUST_PAYLOAD_TYPE:
        raise TrustError("not a trust envelope", payload_type=env.payload_type[:100])
    try:
        return env, trust_from_payload(env.payload, data)
    except MalformedError as e:
        raise TrustError(f"malformed trust metadata: {e.message}", **e.details) from None


def _signed_by(env: Envelope, ks: KeySet, what: str) -> None:
    try:
        verify_envelope(env, TRUST_PAYLOAD_TYPE, ks.keys, ks.threshold)
    except ProtocolError as e:
        raise TrustError(f"trust metadata not signed by a threshold of the {what} root keys: {e.message}") from None


def load_pinned_trust(data: bytes, *, now: dt.datetime | None = None) -> TrustMetadata:
    """Load the out-of-band pinned trust version: it must be signed by a threshold of its own root keys.

    ``now`` given: also refuse it when expired (a node starting up); omitted: an auditor reading history.
    """
    env, trust = _parse(data)
    _signed_by(env, trust.root, "its own")
    if now is not None and trust.expired(now):
        raise TrustError(f"trust version {trust.version} expired at {format_time(trust.expires)}")
    return trust


def update_trust(current: TrustMetadata, data: bytes, *, now: dt.datetime | None = None) -> TrustMetadata:
    """Accept version current+1 (see module rules). Raises TrustError; never returns a partly checked version."""
    env, new = _parse(data)
    if new.version != current.version + 1:
        raise TrustError(
            f"trust version must be exactly {current.version + 1}, got {new.version}",
            expected=current.version + 1,
            got=new.version,
        )
    _signed_by(env, current.root, f"version {current.version}")
    _signed_by(env, new.root, "new")
    if new.log_origin != current.log_origin:
        raise TrustError("the log origin cannot change", old=current.log_origin, new=new.log_origin)
    if now is not None and new.expired(now):
        raise TrustError(f"trust version {new.version} expired at {format_time(new.expires)}")
    return new


def extend_trust_chain(chain: Sequence[TrustMetadata], documents: Sequence[bytes]) -> list[TrustMetadata]:
    """A chain already verified (by :func:`verify_trust_chain`) extended by the next versions, in order: each
    must be accepted by :func:`update_trust` from the one before. Verifying a chain that grew by one version
    then costs one version, not the whole chain again."""
    if not chain:
        raise TrustError("no verified trust chain to extend")
    if len(chain) + len(documents) > MAX_CHAIN:
        raise LimitExceededError(f"trust chain longer than {MAX_CHAIN}", length=len(chain) + len(documents))
    out = list(chain)
    for doc in documents:
        out.append(update_trust(out[-1], doc))
    return out


def verify_trust_chain(
    documents: Sequence[bytes], *, pinned: bytes | None = None, now: dt.datetime | None = None
) -> list[TrustMetadata]:
    """Walk a chain of trust versions from the pinned one (``pinned`` or ``documents[0]``).

    Returns every version in order. Only the newest is checked for expiry against ``now``: older versions
    judge history by log position.
    """
    if len(documents) > MAX_CHAIN:
        raise LimitExceededError(f"trust chain longer than {MAX_CHAIN}", length=len(documents))
    if not documents:
        raise TrustError("no trust metadata given")
    ordered = sorted(documents, key=lambda d: _parse(d)[1].version)
    first = load_pinned_trust(pinned if pinned is not None else ordered[0])
    chain = [first]
    for doc in ordered:
        v = _parse(doc)[1].version
        if v < first.version:
            continue
        if v == first.version:
            if _parse(doc)[1].payload != first.payload:
                raise TrustError(f"two different trust documents claim version {v}", version=v)
            continue
        chain.append(update_trust(chain[-1], doc))
    if now is not None and chain[-1].expired(now):
        raise TrustError(f"newest trust version {chain[-1].version} expired at {format_time(chain[-1].expires)}")
    return chain
