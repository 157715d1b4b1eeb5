"""Private key files of a node: created with mode 0600 and never overwritten; refused when readable by
others (an operator error that must not go unnoticed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from common.errors import ConfigError


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
