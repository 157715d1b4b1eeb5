"""Small strict shape checks for protocol objects (exact key sets, types, ranges)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sync_protocol.canonical import MAX_SAFE_INTEGER, parse_time
from sync_protocol.errors import MalformedError

HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def exact_keys(obj: Any, required: set[str], what: str, optional: set[str] | frozenset[str] = frozenset()) -> dict:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what} must be an object")
    keys = set(obj)
    missing = required - keys
    extra = keys - required - set(optional)
    if missing:
        raise MalformedError(f"{what} lacks {sorted(missing)}", missing=sorted(missing))
    if extra:
        raise MalformedError(f"{what} has unknown fields {sorted(extra)[:10]}", unknown=sorted(extra)[:10])
    return obj


def string(
    obj: dict,
    key: str,
    what: str,
    *,
    max_len: int = 200,
    pattern: re.Pattern[str] | None = None,
    nullable: bool = False,
) -> str | None:
    v = obj.get(key)
    if v is None and nullable:
        return None
    if not isinstance(v, str) or not v or len(v) > max_len or (pattern is not None and not pattern.match(v)):
        raise MalformedError(
            f"{what}.{key} must be a string{' matching ' + pattern.pattern if pattern else ''}", field=key
        )
    return v


def integer(obj: dict, key: str, what: str, *, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= maximum:
        raise MalformedError(f"{what}.{key} must be an integer in [{minimum}, {maximum}]", field=key)
    return v


def hex_hash(obj: dict, key: str, what: str, *, nullable: bool = False) -> str | None:
    return string(obj, key, what, max_len=64, pattern=HEX64, nullable=nullable)


def time(obj: dict, key: str, what: str):
    return parse_time(obj.get(key), f"{what}.{key}")


def one_of(obj: dict, key: str, what: str, allowed: set[str] | frozenset[str]) -> str:
    v = obj.get(key)
    if v not in allowed:
        raise MalformedError(f"{what}.{key} must be one of {sorted(allowed)}", field=key)
    return v


def list_of(obj: dict, key: str, what: str, check: Callable[[Any], Any], *, max_items: int = 1000) -> list:
    v = obj.get(key)
    if not isinstance(v, list) or len(v) > max_items:
        raise MalformedError(f"{what}.{key} must be a list of at most {max_items} items", field=key)
    return [check(x) for x in v]
