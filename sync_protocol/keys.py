"""Ed25519 keys for tmis-sync/1.

* A key id is the lowercase hex SHA-256 of the raw 32-byte public key. Ids are always recomputed from the
  key material, never trusted as given: the same key cannot be listed twice under two ids to fake a
  threshold.
* :class:`Signer` holds a private key (loaded by the node from its 0600 key file; this package never
  touches files). Signing is deterministic (Ed25519), which keeps the golden test vectors byte-stable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync_protocol.errors import MalformedError

KEYTYPE = "ed25519"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(value: Any, what: str) -> bytes:
    """Strict standard base64 (padding required, no whitespace, canonical)."""
    if not isinstance(value, str):
        raise MalformedError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise MalformedError(f"{what} is not canonical base64")
    return raw


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    raw: bytes
    keyid: str = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise MalformedError("an Ed25519 public key has 32 bytes")
        object.__setattr__(self, "keyid", key_id(self.raw))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message)
            return True
        except InvalidSignature:
            return False

    def to_json(self) -> dict[str, str]:
        return {"keytype": KEYTYPE, "public": b64encode(self.raw)}

    @classmethod
    def from_json(cls, keyid: str, obj: Any) -> PublicKey:
        if not isinstance(obj, dict) or set(obj) != {"keytype", "public"} or obj["keytype"] != KEYTYPE:
            raise MalformedError("a key is {keytype: ed25519, public: <base64>}", keyid=str(keyid)[:80])
        key = cls(b64decode(obj["public"], "public key"))
        if key.keyid != keyid:
            raise MalformedError(
                "key id does not match the key (id = hex SHA-256 of the raw public key)", keyid=str(keyid)[:80]
            )
        return key


def keys_from_json(obj: Any, what: str) -> dict[str, PublicKey]:
    if not isinstance(obj, dict) or not obj:
        raise MalformedError(f"{what} must be a non-empty object of keys")
    return {kid: PublicKey.from_json(kid, v) for kid, v in obj.items()}


def keys_to_json(keys: dict[str, PublicKey] | list[PublicKey]) -> dict[str, dict[str, str]]:
    items = keys.values() if isinstance(keys, dict) else keys
    return {k.keyid: k.to_json() for k in items}


class Signer:
    """An Ed25519 private key with its public half and key id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(raw)
        self.keyid = self.public.keyid

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        """Deterministic key from a 32-byte seed (test vectors only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise MalformedError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)
