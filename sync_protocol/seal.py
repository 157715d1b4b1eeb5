"""Sealed identities (密封的身份证件号): ID numbers travel and rest at the national node only as ciphertext.

Threat model: whoever reads a node's disk, a database dump, a stored batch file, an exported audit bundle or a
message in transit learns no ID number. ID numbers have low entropy (an 18-digit resident number is a birth
date, a region and a few digits), so neither a clear value nor an unkeyed hash of one may be stored anywhere.

**The sealed string** (what stands where a protocol message would carry an ID number)::

    seal1:<kid>:<base64(nonce ‖ ciphertext ‖ tag)>

AES-256-GCM under the *province seal key* ``kid`` (32 random bytes a province generates), a 12-byte random
nonce, and as associated data ``tmis-seal/1`` ‖ LF ‖ teacher number ‖ LF ‖ field (e.g. ``JBXX.SFZJH``), so a
sealed value cannot be moved to another teacher or another field without failing. ``kid`` is 1–40 characters
``[A-Za-z0-9._-]``. Symmetric sealing costs about a microsecond per value: a batch of 1 000 records seals in
about a millisecond, where a public-key seal per record (HPKE) would cost ~100 µs each.

**The province seal key reaches the national node wrapped** (:func:`wrap_seal_key`): X25519 with a fresh
ephemeral key against the national node's *seal public key*, HKDF-SHA256 (salt = ephemeral public ‖ recipient
public, info = ``tmis-seal-wrap/1`` ‖ LF ‖ province ‖ LF ‖ kid), AES-256-GCM with the same info as associated
data. The province registers the wrapped key with a signed request at enrolment and at every rotation; the
national node stores it wrapped and unwraps it in memory only. The national node's seal public key is published
as a DSSE envelope (:data:`SEAL_KEY_PAYLOAD_TYPE`) signed by a national *message key* of the trust metadata
(:func:`verify_seal_key_document`), so a province seals only to the real national node.

**What keeps working**: batch signatures, record hashes and Merkle leaves are over the bytes as sent, i.e. over
the sealed strings, so an auditor verifies batches, chains and the log without any seal key. Sealing is
randomised (a fresh nonce), so equal numbers do not give equal sealed strings: the national node finds duplicates
through a keyed blind index it computes after opening a seal in memory.

This module is pure: keys are passed in, nothing is read from files.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync_protocol import PROTOCOL
from sync_protocol._schema import exact_keys, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical
from sync_protocol.dsse import encode_envelope, parse_envelope, sign_envelope, verify_envelope
from sync_protocol.errors import MalformedError, ProtocolError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import PublicKey, Signer

PREFIX = "seal1:"
SEAL_KEY_PAYLOAD_TYPE = "application/vnd.tmis.seal-key.v1+json"
KID = re.compile(r"^[A-Za-z0-9._-]{1,40}\Z")
_SEALED = re.compile(r"^seal1:([A-Za-z0-9._-]{1,40}):([A-Za-z0-9+/]+={0,2})\Z")
_AD = b"tmis-seal/1\n"
_WRAP_INFO = b"tmis-seal-wrap/1\n"
MAX_SEALED_LENGTH = 30 * 4 + 200  # a sealed ID number (≤ 30 characters) stays well under this


class SealError(ProtocolError):
    """A sealed value cannot be opened: bad format, unknown seal key, wrong key, tampered, or moved to another
    teacher or field."""

    code = "protocol_seal_invalid"
    http_status = 422


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def new_seal_key() -> bytes:
    """32 random bytes: a province seal key."""
    return AESGCM.generate_key(256)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: str, what: str, error: type[ProtocolError] = MalformedError) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64") from None
    if _b64(raw) != value:
        raise error(f"{what} is not canonical base64")
    return raw


@lru_cache(maxsize=256)
def _aead(key: bytes) -> AESGCM:
    """One cipher object per key (building one costs more than sealing a value with it)."""
    return AESGCM(key)


def _ad(teacher_number: str, field: str) -> bytes:
    return _AD + teacher_number.encode("utf-8") + b"\n" + field.encode("utf-8")


def check_kid(kid: Any, what: str = "kid") -> str:
    if not isinstance(kid, str) or not KID.match(kid):
        raise MalformedError(f"{what} must be 1–40 characters of A–Z a–z 0–9 . _ -")
    return kid


def seal(key: bytes, kid: str, value: str, *, teacher_number: str, field: str) -> str:
    """``value`` sealed under the province seal key ``kid`` for ``teacher_number``'s ``field``."""
    check_kid(kid)
    nonce = os.urandom(12)
    body = _aead(key).encrypt(nonce, value.encode("utf-8"), _ad(teacher_number, field))
    return f"{PREFIX}{kid}:{_b64(nonce + body)}"


def sealed_kid(sealed: Any, field: str = "value") -> str:
    """The seal key id of a sealed string; raises :class:`SealError` when it is not one."""
    if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_LENGTH or not _SEALED.match(sealed):
        raise SealError(f"{field} is not a sealed value (seal1:<kid>:<base64>)", field=field)
    return sealed.split(":", 2)[1]


def open_sealed(keys: Mapping[str, bytes], sealed: Any, *, teacher_number: str, field: str) -> str:
    """The clear value of ``sealed``. Verifies the format, that ``keys`` holds its seal key, and the AES-GCM tag
    over the teacher number and field; raises :class:`SealError` (naming the field, never the value)."""
    kid = sealed_kid(sealed, field)
    key = keys.get(kid)
    if key is None:
        raise SealError(f"{field} is sealed under seal key {kid}, which is not registered", field=field, kid=kid)
    raw = _unb64(sealed.split(":", 2)[2], field, SealError)
    if len(raw) < 12 + 16:
        raise SealError(f"{field}: the sealed value is too short", field=field)
    try:
        clear = _aead(key).decrypt(raw[:12], raw[12:], _ad(teacher_number, field))
    except InvalidTag:
        raise SealError(
            f"{field} does not open: wrong key, tampered, or sealed for another teacher or field",
            field=field,
            kid=kid,
        ) from None
    try:
        return clear.decode("utf-8")
    except UnicodeDecodeError:
        raise SealError(f"{field}: the sealed value is not UTF-8 text", field=field) from None


# --------------------------------------------------------------------------------- the national seal key


def public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_b64(value: Any, what: str = "public") -> X25519PublicKey:
    if not isinstance(value, str):
        raise MalformedError(f"{what} must be a base64 string")
    raw = _unb64(value, what)
    if len(raw) != 32:
        raise MalformedError(f"{what} is not a 32-byte X25519 public key")
    return X25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class SealKeyDocument:
    """The national node's seal public key as it signed it."""

    kid: str
    public: X25519PublicKey
    public_b64: str
    issued_at: dt.datetime
    envelope: bytes


def build_seal_key_document(kid: str, public: X25519PublicKey, issued_at: dt.datetime, signer: Signer) -> bytes:
    """The signed envelope publishing the national seal public key ``kid`` (signed by a message key)."""
    payload = canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "seal_key",
            "kid": check_kid(kid),
            "public": _b64(public_bytes(public)),
            "issued_at": format_time(issued_at),
        }
    )
    return encode_envelope(sign_envelope(payload, SEAL_KEY_PAYLOAD_TYPE, [signer]))


def verify_seal_key_document(data: bytes, message_keys: Mapping[str, PublicKey]) -> SealKeyDocument:
    """Signature by one of the national message keys (``trust.message_keys``), then schema."""
    env = parse_envelope(data)
    verify_envelope(env, SEAL_KEY_PAYLOAD_TYPE, dict(message_keys), 1)
    obj = parse_canonical(env.payload)
    exact_keys(obj, {"protocol", "type", "kid", "public", "issued_at"}, "seal key")
    if obj["protocol"] != PROTOCOL or obj["type"] != "seal_key":
        raise MalformedError(f"not a {PROTOCOL} seal key document")
    string(obj, "public", "seal key", max_len=64)
    return SealKeyDocument(
        check_kid(obj["kid"], "seal key.kid"),
        public_key_from_b64(obj["public"], "seal key.public"),
        obj["public"],
        time(obj, "issued_at", "seal key"),
        data,
    )


# ------------------------------------------------------------------------- wrapping a province seal key


def _wrap_key(shared: bytes, eph: bytes, recipient: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + recipient, info=info).derive(shared)


def _wrap_info(province: str, kid: str) -> bytes:
    return _WRAP_INFO + province.encode("ascii") + b"\n" + kid.encode("ascii")


def wrap_seal_key(
    key: bytes, *, province: str, kid: str, recipient: X25519PublicKey, recipient_kid: str
) -> dict[str, str]:
    """The province seal key ``kid`` wrapped to the national seal public key (see the module rules): the body of
    the registration request ``{"province", "kid", "recipient", "enc", "wrapped"}``."""
    if len(key) != 32:
        raise ValueError("a seal key is 32 bytes")
    check_province(province)
    check_kid(kid)
    eph = X25519PrivateKey.generate()
    eph_pub, rec_pub = public_bytes(eph.public_key()), public_bytes(recipient)
    info = _wrap_info(province, kid)
    nonce = os.urandom(12)
    body = AESGCM(_wrap_key(eph.exchange(recipient), eph_pub, rec_pub, info)).encrypt(nonce, key, info)
    return {
        "province": province,
        "kid": kid,
        "recipient": check_kid(recipient_kid),
        "enc": _b64(eph_pub),
        "wrapped": _b64(nonce + body),
    }


def check_wrapped(obj: Any) -> dict[str, str]:
    exact_keys(obj, {"province", "kid", "recipient", "enc", "wrapped"}, "seal key registration")
    check_province(obj["province"], "seal key registration.province")
    check_kid(obj["kid"], "seal key registration.kid")
    check_kid(obj["recipient"], "seal key registration.recipient")
    string(obj, "enc", "seal key registration", max_len=64)
    string(obj, "wrapped", "seal key registration", max_len=128)
    public_key_from_b64(obj["enc"], "seal key registration.enc")
    if len(_unb64(obj["wrapped"], "seal key registration.wrapped")) != 12 + 32 + 16:
        raise MalformedError("seal key registration.wrapped is not a wrapped 32-byte key")
    return obj


def unwrap_seal_key(obj: Mapping[str, str], private: X25519PrivateKey) -> bytes:
    """The province seal key of a registration (:func:`wrap_seal_key`); raises :class:`SealError` when it does
    not open with ``private`` (another recipient, tampered, or province/kid changed)."""
    check_wrapped(dict(obj))
    eph_pub = _unb64(obj["enc"], "enc")
    raw = _unb64(obj["wrapped"], "wrapped")
    info = _wrap_info(obj["province"], obj["kid"])
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    try:
        return AESGCM(_wrap_key(shared, eph_pub, public_bytes(private.public_key()), info)).decrypt(
            raw[:12], raw[12:], info
        )
    except InvalidTag:
        raise SealError(
            "the wrapped seal key does not open with this national seal key",
            kid=obj["kid"],
            recipient=obj["recipient"],
        ) from None
