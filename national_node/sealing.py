"""The national node's side of sealed identities (docs/security.md "ID numbers at the national node").

Rules of this module:

* The **seal key file** ``<data dir>/keys/seal-keys.json`` (JSON, mode 0600, never group- or world-readable)
  holds the national *seal private keys* (X25519, by id; the *current* one is the one published to provinces)
  and the *index key* (HMAC-SHA256) of the blind index. ``tmis national init`` creates it, ``tmis national
  data-keys init`` creates it for a node from before sealing, ``rotate`` adds a new current seal key (the old
  ones stay: the registrations wrapped to them still open) or, with ``--index``, a new index key (then every
  stored index is computed again: ``reindex``).
* A province's **seal keys** are registered wrapped to a national seal public key (:class:`ProvinceSealKey`, the
  wrapped bytes only) and unwrapped in memory when needed; the national node never stores one in clear.
* The **identity index** of a core record is ``bi1:`` + HMAC-SHA256(index key, doc type ``:`` doc number): equal
  documents have equal indexes across provinces (duplicate detection), and without the key file an index tells
  nothing (an ID number cannot be tested against it offline). Sealed values are opened in memory only to compute
  it; the stored fields are the sealed strings as received.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import ConfigError
from common.keyfile import write_secret_file
from national_node.keys import NodeKeys
from national_node.provinces.models import ProvinceSealKey
from sync_protocol.canonical import format_time, parse_time
from sync_protocol.keys import Signer
from sync_protocol.seal import (
    SealError,
    build_seal_key_document,
    check_wrapped,
    is_sealed,
    open_sealed,
    seal,
    unwrap_seal_key,
)

FORMAT = "tmis-national-seal-key/1"
INDEX_PREFIX = "bi1:"
FILE_NAME = "seal-keys.json"
IDENTITY_FIELD = "JBXX.SFZJH"  # where a core record (and a moved file's record groups) carries the ID number
TRANSFER_FIELD = "identity.doc_number"  # where a transfer request carries it
HISTORY_FIELD = "history.JBXX.SFZJH"  # the old/new values of a moved file's history changes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


@dataclass(frozen=True)
class NationalSealKeys:
    """The seal key file (see the module rules)."""

    seal_keys: dict[str, X25519PrivateKey]
    created: dict[str, dt.datetime]
    current: str
    index_key: bytes
    index_id: str = "i1"
    _unwrapped: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def generate(cls, now: dt.datetime | None = None) -> NationalSealKeys:
        now = now or utcnow()
        return cls({"n1": X25519PrivateKey.generate()}, {"n1": now}, "n1", secrets.token_bytes(32))

    def rotated(self, *, index: bool = False, now: dt.datetime | None = None) -> NationalSealKeys:
        if index:
            n = 1 + int(self.index_id[1:])
            return NationalSealKeys(self.seal_keys, self.created, self.current, secrets.token_bytes(32), f"i{n}")
        n = 1 + max(int(k[1:]) for k in self.seal_keys)
        kid = f"n{n}"
        return NationalSealKeys(
            {**self.seal_keys, kid: X25519PrivateKey.generate()},
            {**self.created, kid: now or utcnow()},
            kid,
            self.index_key,
            self.index_id,
        )

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "current": self.current,
            "seal_keys": {
                kid: {"private": _b64(_raw(k)), "created": format_time(self.created[kid])}
                for kid, k in sorted(self.seal_keys.items())
            },
            "index_id": self.index_id,
            "index_key": _b64(self.index_key),
        }
        return json.dumps(body, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> NationalSealKeys:
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            keys = {
                kid: X25519PrivateKey.from_private_bytes(base64.b64decode(v["private"], validate=True))
                for kid, v in body["seal_keys"].items()
            }
            created = {kid: parse_time(v["created"], "created") for kid, v in body["seal_keys"].items()}
            index_key = base64.b64decode(body["index_key"], validate=True)
            if body["current"] not in keys or len(index_key) != 32:
                raise ValueError("current key missing or index key not 256 bits")
            return cls(keys, created, str(body["current"]), index_key, str(body["index_id"]))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(
                f"{where} is not a tmis national seal key file: {e}",
                details={"variable": "TMIS_DATA_DIR", "value": where, "reason": "malformed"},
            ) from None

    def save(self, path: Path, *, replace: bool = False) -> None:
        """Write the file with mode 0600, atomically; an existing file is overwritten only with ``replace``."""
        write_secret_file(path, self.to_json(), replace=replace, what="seal key file", variable="TMIS_DATA_DIR")
        load_seal_keys.cache_clear()

    # --- what the node does with them ------------------------------------------------------------------
    def document(self, signer: Signer) -> bytes:
        """The signed document publishing the current seal public key (sync_protocol.seal)."""
        key = self.seal_keys[self.current]
        return build_seal_key_document(self.current, key.public_key(), self.created[self.current], signer)

    def identity_index(self, doc_type: str, doc_number: str) -> str:
        message = f"{doc_type}:{doc_number.strip().upper()}".encode()
        return INDEX_PREFIX + hmac.new(self.index_key, message, hashlib.sha256).hexdigest()

    def unwrap(self, row: ProvinceSealKey) -> bytes:
        cache_key = f"{row.kid}:{row.enc}:{row.wrapped}"  # the registration itself, not only its id
        key = self._unwrapped.get(cache_key)
        if key is None:
            private = self.seal_keys.get(row.recipient)
            if private is None:
                raise SealError(
                    f"seal key {row.kid} is wrapped to national seal key {row.recipient}, which this node lacks",
                    kid=row.kid,
                )
            key = self._unwrapped[cache_key] = unwrap_seal_key(row.wrapped_json(), private)
        return key


def key_path(keys_dir: Path) -> Path:
    return keys_dir / FILE_NAME


def create_key_file(keys_dir: Path) -> NationalSealKeys:
    keys = NationalSealKeys.generate()
    keys.save(key_path(keys_dir))
    return keys


@cache
def _load(path: Path, mtime_ns: int) -> NationalSealKeys:
    return NationalSealKeys.from_json(path.read_bytes(), str(path))


def load_seal_keys(keys_dir: Path) -> NationalSealKeys:
    """The seal key file (read again when it changed on disk: a rotation needs no restart)."""
    path = key_path(keys_dir)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"seal key file {path} not found (tmis national data-keys init creates it)",
            details={"variable": "TMIS_DATA_DIR", "value": str(path), "reason": "missing"},
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"seal key file {path} is accessible by group or others (chmod 600 it)",
            details={"variable": "TMIS_DATA_DIR", "value": str(path), "reason": "permissions"},
        )
    return _load(path, st.st_mtime_ns)


load_seal_keys.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def seal_keys_of(keys: NodeKeys) -> NationalSealKeys:
    """The seal key file beside the node's signing keys (``tmis national init`` creates it; a node from before
    sealing: ``tmis national data-keys init``)."""
    if keys.keys_dir is None:
        raise ConfigError("these node keys were not loaded from a key directory", details={"reason": "missing"})
    if not key_path(keys.keys_dir).exists():
        raise ConfigError(
            f"seal key file {key_path(keys.keys_dir)} not found (tmis national data-keys init creates it)",
            details={"variable": "TMIS_DATA_DIR", "value": str(key_path(keys.keys_dir)), "reason": "missing"},
        )
    return load_seal_keys(keys.keys_dir)


# --------------------------------------------------------------------------------- province seal keys


def register(session: Session, keys: NationalSealKeys, province: str, wrapped: dict[str, Any]) -> ProvinceSealKey:
    """Register a province seal key (the signed request of that province): it must be for that province, wrapped
    to a national seal key this node holds, and open. A kid is registered once; the same registration again is
    answered as it was (a retried request)."""
    check_wrapped(wrapped)
    if wrapped["province"] != province:
        raise SealError("a seal key is registered by its own province", province=wrapped["province"])
    existing = session.get(ProvinceSealKey, wrapped["kid"])
    if existing is not None:
        if existing.province_code == province and existing.wrapped_json() == wrapped:
            return existing
        raise SealError("this seal key id is already registered", kid=wrapped["kid"])
    private = keys.seal_keys.get(wrapped["recipient"])
    if private is None:
        raise SealError("the seal key is wrapped to an unknown national seal key", recipient=wrapped["recipient"])
    unwrap_seal_key(wrapped, private)  # refuses what does not open
    row = ProvinceSealKey(
        kid=wrapped["kid"],
        province_code=province,
        recipient=wrapped["recipient"],
        enc=wrapped["enc"],
        wrapped=wrapped["wrapped"],
        registered_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def registrations(session: Session, province: str | None = None) -> list[ProvinceSealKey]:
    stmt = select(ProvinceSealKey).order_by(ProvinceSealKey.registered_at, ProvinceSealKey.kid)
    if province:
        stmt = stmt.where(ProvinceSealKey.province_code == province)
    return list(session.scalars(stmt))


@dataclass
class Opener:
    """Opens the sealed values of one province's messages (its registered seal keys, unwrapped in memory)."""

    keys: NationalSealKeys
    province: str
    seal_keys: Mapping[str, bytes]

    def open(self, value: str, *, teacher_number: str, field: str) -> str:
        return open_sealed(self.seal_keys, value, teacher_number=teacher_number, field=field)

    def clear(self, value: Any, *, teacher_number: str, field: str) -> Any:
        """A sealed value opened; anything else (a value from a province not sealing yet) as it is."""
        return self.open(value, teacher_number=teacher_number, field=field) if is_sealed(value) else value

    def identity_index(self, fields: Mapping[str, Any], teacher_number: str) -> str | None:
        """The keyed index of a core record's identity (None without one); raises SealError for a bad seal."""
        basic = fields.get("JBXX") or {}
        if not basic.get("SFZJLXM") or not basic.get("SFZJH"):
            return None
        number = self.clear(basic["SFZJH"], teacher_number=teacher_number, field=IDENTITY_FIELD)
        return self.keys.identity_index(str(basic["SFZJLXM"]), number)


def opener(session: Session, keys: NationalSealKeys, province: str) -> Opener:
    rows = registrations(session, province)
    return Opener(keys, province, {r.kid: keys.unwrap(r) for r in rows})


def current_seal_key(session: Session, keys: NationalSealKeys, province: str) -> tuple[str, bytes] | None:
    """The province's newest registered seal key (what the national node seals to it with), or None."""
    rows = registrations(session, province)
    return (rows[-1].kid, keys.unwrap(rows[-1])) if rows else None


def reseal(
    session: Session,
    keys: NationalSealKeys,
    value: Any,
    *,
    from_province: str,
    to_province: str,
    teacher_number: str,
    field: str,
) -> Any:
    """A value sealed by ``from_province`` sealed again to ``to_province`` (transfers). A clear value (from a
    province before sealed identities) is sealed when the destination has a seal key and passed on as it is when
    it has none; a sealed value for a destination without a seal key raises SealError."""
    clear = opener(session, keys, from_province).clear(value, teacher_number=teacher_number, field=field)
    target = current_seal_key(session, keys, to_province)
    if target is None:
        if not is_sealed(value):
            return value
        raise SealError(f"province {to_province} has not registered a seal key", province=to_province)
    return seal(target[1], target[0], clear, teacher_number=teacher_number, field=field)
