"""Personal data protected at rest (数据保密性): ID numbers encrypted with an authenticated cipher under a node
data key, and found through a keyed blind index.

Rules of this module:

* :class:`DataKeys` is the node's data key file (JSON, mode 0600, never world- or group-readable): one or more
  AES-256-GCM keys by id, the id of the *current* one (new values are encrypted under it), and an HMAC-SHA256 key
  for the blind index. Rotation (:meth:`DataKeys.rotated`) adds a new current key and keeps the old ones, so
  every stored value stays readable while a re-encryption runs and after it (backups).
* A protected value is stored as ``enc1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`` (12-byte random nonce,
  associated data ``tmis-pii/1``): tampering or a wrong key fails loudly (:class:`ProtectedDataError`), never
  silently. A stored value without the prefix is a value from before protection: it is read as it is, and the
  node's re-encryption command protects it.
* The blind index of a value is ``bi1:`` + HMAC-SHA256(index key, value) in hex: equal values have equal
  indexes, so lookups and unique constraints work without the clear value, and without the key the index tells
  nothing (an ID number cannot be tested against it offline).
* The column types (:class:`ProtectedString`, :class:`BlindIndex`, :class:`ProtectedJSON`) encrypt when a value
  is written and decrypt when it is read, so services keep working with clear values. They find the keys on the
  engine's dialect (:func:`install`): each node's engine carries its own node's keys, and writing a protected
  value through an engine without keys is refused (:class:`DataKeyMissingError`) — never stored in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, String
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from common.errors import ConfigError, ErrorCode, TmisError
from common.keyfile import write_secret_file

PREFIX = "enc1:"
INDEX_PREFIX = "bi1:"
_AAD = b"tmis-pii/1"
FORMAT = "tmis-data-key/1"


class ProtectedDataError(TmisError):
    """A protected value cannot be decrypted: unknown key id, wrong key, or tampered ciphertext."""

    code = ErrorCode.PROTECTED_DATA_INVALID
    http_status = 500


class DataKeyMissingError(ConfigError):
    """A protected value was to be written or read through an engine that has no data key."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class DataKeys:
    keys: dict[str, bytes]
    current: str
    index_key: bytes
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ConfigError("the data key file names a current key it does not hold", details={"reason": "current"})
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise ConfigError(f"data key {kid} is not 256 bits", details={"reason": "key length"})
            self._ciphers[kid] = AESGCM(key)
        if len(self.index_key) != 32:
            raise ConfigError("the blind-index key is not 256 bits", details={"reason": "key length"})

    @classmethod
    def generate(cls) -> DataKeys:
        return cls({"k1": AESGCM.generate_key(256)}, "k1", secrets.token_bytes(32))

    def rotated(self) -> DataKeys:
        """A new current key beside the old ones (the blind-index key stays: indexes need not change)."""
        n = 1 + max(int(k[1:]) for k in self.keys if k[1:].isdigit())
        kid = f"k{n}"
        return DataKeys({**self.keys, kid: AESGCM.generate_key(256)}, kid, self.index_key)

    # --- the file -------------------------------------------------------------------------------------
    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "current": self.current,
            "keys": {kid: _b64(k) for kid, k in sorted(self.keys.items())},
            "index_key": _b64(self.index_key),
        }
        return json.dumps(body, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, where: str = "data key") -> DataKeys:
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            keys = {str(kid): base64.b64decode(v, validate=True) for kid, v in body["keys"].items()}
            return cls(keys, str(body["current"]), base64.b64decode(body["index_key"], validate=True))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(
                f"{where} is not a tmis data key file: {e}",
                details={"variable": "TMIS_DATA_KEY_PATH", "value": where, "reason": "malformed"},
            ) from None

    def save(self, path: Path, *, replace: bool = False) -> None:
        """Write the key file with mode 0600 (atomically: a temporary file renamed over the old one when
        ``replace``; otherwise an existing file is never overwritten)."""
        write_secret_file(path, self.to_json(), replace=replace, what="data key file", variable="TMIS_DATA_KEY_PATH")

    @classmethod
    def load(cls, path: Path) -> DataKeys:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise DataKeyMissingError(
                f"data key file {path} not found (tmis province data-keys init creates it)",
                details={"variable": "TMIS_DATA_KEY_PATH", "value": str(path), "reason": "missing"},
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"data key file {path} is accessible by group or others (chmod 600 it)",
                details={"variable": "TMIS_DATA_KEY_PATH", "value": str(path), "reason": "permissions"},
            )
        return cls.from_json(path.read_bytes(), str(path))

    # --- values ---------------------------------------------------------------------------------------
    def encrypt(self, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._ciphers[self.current].encrypt(nonce, value.encode("utf-8"), _AAD)
        return f"{PREFIX}{self.current}:{_b64(nonce + sealed)}"

    def decrypt(self, stored: str) -> str:
        if not is_protected(stored):
            return stored
        try:
            _, kid, body = stored.split(":", 2)
            raw = base64.b64decode(body, validate=True)
            return self._ciphers[kid].decrypt(raw[:12], raw[12:], _AAD).decode("utf-8")
        except KeyError:
            raise ProtectedDataError(
                "a protected value was encrypted under a data key this node does not hold",
                details={"key_id": stored.split(":")[1] if stored.count(":") >= 2 else None},
            ) from None
        except (ValueError, InvalidTag):
            raise ProtectedDataError("a protected value is damaged or was tampered with") from None

    def key_id_of(self, stored: str) -> str | None:
        return stored.split(":", 2)[1] if is_protected(stored) else None

    def blind_index(self, value: str) -> str:
        digest = hmac.new(self.index_key, value.strip().upper().encode("utf-8"), hashlib.sha256).hexdigest()
        return INDEX_PREFIX + digest


def is_protected(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


# --- engines and column types -----------------------------------------------------------------------------
_ATTR = "tmis_data_keys"


def install(engine: Engine, keys: DataKeys | None) -> Engine:
    """Give an engine its node's data keys (the column types find them on the engine's dialect)."""
    setattr(engine.dialect, _ATTR, keys)
    return engine


def keys_of(dialect: Any) -> DataKeys:
    keys = getattr(dialect, _ATTR, None)
    if keys is None:
        raise DataKeyMissingError(
            "this database connection has no data key: ID numbers cannot be written or read "
            "(TMIS_DATA_KEY_PATH; tmis province data-keys init)",
            details={"variable": "TMIS_DATA_KEY_PATH", "reason": "missing"},
        )
    return keys


class ProtectedString(TypeDecorator[str]):
    """A string column whose values are stored encrypted (see the module rules)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or is_protected(value):
            return value
        return keys_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or not is_protected(value):
            return value
        return keys_of(dialect).decrypt(value)


class BlindIndex(TypeDecorator[str]):
    """The keyed blind index of a value: assign (or compare with) the clear value; the HMAC is what is stored
    and compared."""

    impl = String(68)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or value.startswith(INDEX_PREFIX):
            return value
        return keys_of(dialect).blind_index(value)


def _map_file(doc: Any, fields: Iterable[tuple[str, str]], fn: Any) -> Any:
    """A file document ``{group: {field: value} | [{field: value}]}`` with ``fn`` applied to the named fields."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    for group, name in fields:
        content = out.get(group)
        if isinstance(content, dict) and isinstance(content.get(name), str):
            out[group] = {**content, name: fn(content[name])}
        elif isinstance(content, list):
            out[group] = [
                {**r, name: fn(r[name])} if isinstance(r, dict) and isinstance(r.get(name), str) else r for r in content
            ]
    return out


def _map_changes(changes: Any, fields: Iterable[tuple[str, str]], fn: Any) -> Any:
    """A history's changes ``[{group, index, field, old, new}]`` with ``fn`` applied to old/new of the named
    fields."""
    if not isinstance(changes, list):
        return changes
    wanted = set(fields)
    out = []
    for c in changes:
        if isinstance(c, dict) and (c.get("group"), c.get("field")) in wanted:
            c = {**c, **{k: fn(c[k]) for k in ("old", "new") if isinstance(c.get(k), str)}}
        out.append(c)
    return out


class ProtectedJSON(TypeDecorator[Any]):
    """A JSON column in which the named fields are stored encrypted. ``shape``: ``file`` for a teacher file
    document, ``changes`` for a history's list of field changes; ``fields``: ``((group, field), …)``."""

    impl = JSON
    cache_ok = True

    def __init__(self, shape: str, fields: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        if shape not in ("file", "changes"):
            raise ValueError(f"unknown shape {shape!r}")
        self.shape, self.fields = shape, fields

    def _map(self, value: Any, fn: Any) -> Any:
        mapper = _map_file if self.shape == "file" else _map_changes
        return mapper(value, self.fields, fn)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None

        def seal(v: str) -> str:
            return v if is_protected(v) else keys_of(dialect).encrypt(v)

        return self._map(value, seal)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None

        def unseal(v: str) -> str:
            return keys_of(dialect).decrypt(v) if is_protected(v) else v

        return self._map(value, unseal)
