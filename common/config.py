"""Typed, frozen configuration built from the environment in one place.

Nothing else in tmis reads ``os.environ``: entry points call a node's ``config_from_env``
(``provincial_node.config``, ``national_node.config``) with a mapping (``os.environ`` in production, a dict
in tests) and pass the resulting object down. This module holds what both nodes share: the reader, the
database and bind settings, the base :class:`NodeConfig`. Every malformed value raises
:class:`~common.errors.ConfigError` naming the variable and the reason, before anything is started or
written.

Environment variables both nodes read (each node's config module lists its own):

==============================  ==========================================================  ================
variable                        meaning                                                     default
==============================  ==========================================================  ================
TMIS_DATABASE_URL               SQLAlchemy URL (``sqlite:///path`` or                       ``sqlite:///`` +
                                ``postgresql+psycopg://user@host/db``)                       data dir file
TMIS_DATA_DIR                   directory for SQLite files, keys and exports                ``./var/<node>``
TMIS_BIND                       ``host:port`` the WSGI server listens on                    127.0.0.1:8000/8100
TMIS_SIGNING_KEY_PATH           node signing key (Ed25519 PEM, mode 0600)                   <data dir>/node.key
TMIS_LOG_LEVEL                  Python logging level name                                   INFO
TMIS_LOG_FORMAT                 ``text`` or ``json`` (one JSON object per log line)          text
TMIS_SQL_ECHO                   log SQL statements (``true``/``false``)                      false
TMIS_DB_BUSY_TIMEOUT_MS         SQLite: how long a write waits for the database's write      30000
                                lock before it answers 503 ``storage_busy``
==============================  ==========================================================  ================
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}

# 31 provincial-level units with GB/T 2260 codes, plus 66 for 新疆生产建设兵团 (XPCC), which has no
# GB/T 2260 code; 66 is the code education systems use for it (domain/REFERENCE.md §2).
NODE_PROVINCE_CODES: frozenset[str] = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "66",
    }
)


class EnvReader:
    """Reads typed values from a mapping; errors name the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            if required:
                raise ConfigError(f"{name} is required", details={"variable": name, "reason": "missing"})
            return default
        return value.strip()

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            raise ConfigError(
                f"{name} must be an integer, got {raw!r}",
                details={"variable": name, "value": raw, "reason": "not an integer"},
            ) from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(
                f"{name} must be between {minimum} and {maximum}, got {value}",
                details={"variable": name, "value": raw, "reason": "out of range"},
            )
        return value

    def bool(self, name: str, default: bool) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        low = raw.lower()
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
        raise ConfigError(
            f"{name} must be true or false, got {raw!r}",
            details={"variable": name, "value": raw, "reason": "not a boolean"},
        )


def parse_bind(name: str, raw: str) -> tuple[str, int]:
    """Parse ``host:port``; the host defaults to loopback so nothing listens publicly by accident."""
    m = re.fullmatch(r"(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):)?([0-9]{1,5})", raw)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ConfigError(
            f"{name} must be host:port, got {raw!r}",
            details={"variable": name, "value": raw, "reason": "not host:port"},
        )
    return (m.group(1) or "127.0.0.1").strip("[]"), int(m.group(2))


def validate_database_url(name: str, url: str) -> str:
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        raise ConfigError(
            f"{name} must be a sqlite:// or postgresql:// URL",
            details={"variable": name, "value": url.split("@")[-1], "reason": "unsupported database scheme"},
        )
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the bare scheme would make SQLAlchemy look for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    echo: bool = False
    busy_timeout_ms: int = 30_000  # SQLite: wait this long for the write lock, then storage_busy (503)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


@dataclass(frozen=True)
class NodeConfig:
    """What both kinds of node share."""

    data_dir: Path
    database: DatabaseConfig
    bind_host: str
    bind_port: int
    signing_key_path: Path
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one JSON object per line), TMIS_LOG_FORMAT
    testing: bool = False


def node_values(env: Mapping[str, str], node: str, default_port: int) -> dict:
    """The :class:`NodeConfig` fields from the environment (each node's config module adds its own)."""
    r = EnvReader(env)
    data_dir = Path(r.str("TMIS_DATA_DIR", f"var/{node}")).resolve()
    url = r.str("TMIS_DATABASE_URL") or f"sqlite:///{data_dir / (node + '.sqlite')}"
    url = validate_database_url("TMIS_DATABASE_URL", url)
    host, port = parse_bind("TMIS_BIND", r.str("TMIS_BIND", f"127.0.0.1:{default_port}"))
    level = (r.str("TMIS_LOG_LEVEL", "INFO") or "INFO").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(
            f"TMIS_LOG_LEVEL must be a logging level name, got {level!r}",
            details={"variable": "TMIS_LOG_LEVEL", "value": level, "reason": "unknown level"},
        )
    log_format = (r.str("TMIS_LOG_FORMAT", "text") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(
            f"TMIS_LOG_FORMAT must be text or json, got {log_format!r}",
            details={"variable": "TMIS_LOG_FORMAT", "value": log_format, "reason": "unknown format"},
        )
    return {
        "data_dir": data_dir,
        "database": DatabaseConfig(
            url=url,
            echo=r.bool("TMIS_SQL_ECHO", False),
            busy_timeout_ms=r.int("TMIS_DB_BUSY_TIMEOUT_MS", 30_000, minimum=0, maximum=600_000),
        ),
        "bind_host": host,
        "bind_port": port,
        "signing_key_path": Path(r.str("TMIS_SIGNING_KEY_PATH", str(data_dir / "node.key"))),
        "log_level": level,
        "log_format": log_format,
    }


def validate_province_code(name: str, code: str) -> str:
    if code not in NODE_PROVINCE_CODES:
        raise ConfigError(
            f"{name} must be one of the 32 provincial-level unit codes, got {code!r}",
            details={"variable": name, "value": code, "reason": "unknown province code"},
        )
    return code
