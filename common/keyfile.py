"""Private key files of a node: created with mode 0600 and never overwritten; refused when readable by
others (an operator error that must not go unnoticed). And the one rule for key ids an operator types: the
full id or a unique prefix of at least 8 hex characters (the commands print 16)."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from common.errors import ConfigError, FieldError, NotFoundError, ValidationError


def write_private_key(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"key file {path} already exists; refusing to overwrite it",
            details={"variable": "TMIS_SIGNING_KEY_PATH", "value": str(path), "reason": "exists"},
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)


def write_secret_file(path: Path, data: bytes, *, replace: bool, what: str, variable: str) -> None:
    """Write a secret file (a data or seal key file) with mode 0600, atomically: a temporary file, synced, renamed
    over ``path``. An existing file is overwritten only with ``replace`` (a rotation); otherwise refused, naming
    ``what`` and the config ``variable`` that points at it."""
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise ConfigError(
            f"{what} {path} already exists; refusing to overwrite it",
            details={"variable": variable, "value": str(path), "reason": "exists"},
        )
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_private_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"key file {path} not found",
            details={"variable": "TMIS_SIGNING_KEY_PATH", "value": str(path), "reason": "missing"},
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"key file {path} is accessible by group or others (chmod 600 it)",
            details={"variable": "TMIS_SIGNING_KEY_PATH", "value": str(path), "reason": "permissions"},
        )
    return path.read_bytes()


def match_key_id(candidates: Sequence[str], given: str) -> str:
    """The one key id of ``candidates`` that ``given`` is (in full, or a unique prefix of at least 8 hex
    characters, as the commands print them)."""
    value = given.strip().lower().rstrip("…").rstrip(".")
    if len(value) < 8 or any(c not in "0123456789abcdef" for c in value):
        raise ValidationError(
            "a key id is hexadecimal, at least 8 characters",
            [FieldError("keys", "key_id", "密钥标识应为至少 8 位十六进制字符", "at least 8 hex characters", given)],
        )
    found = [c for c in candidates if c.startswith(value)]
    if not found:
        raise NotFoundError(f"no key {given}", details={"key_id": given})
    if len(found) > 1:
        raise ValidationError(
            f"key id {given} is ambiguous",
            [FieldError("keys", "key_id", "密钥标识不唯一，请多给几位", "ambiguous: give more characters", given)],
        )
    return found[0]
