"""Canonical encoding: RFC 8785 (JCS) JSON for everything hashed or signed, and a strict parser.

Rules:

* Producing: :func:`canonical_bytes` serialises with RFC 8785 (the ``rfc8785`` package). Values may be
  ``None``, ``bool``, ``str``, ``int`` within ±(2^53−1), lists and objects with string keys. **Floats are
  refused** (amounts travel as decimal strings): a float's canonical form differs between languages.
* Parsing: :func:`parse_json` decodes strict UTF-8, refuses duplicate object keys, floats, ``NaN``/
  ``Infinity``, integers outside ±(2^53−1) and nesting deeper than 32.
* :func:`parse_canonical` additionally requires the bytes to be exactly the canonical encoding of what they
  parse to, so one value has one byte form (no malleability) and a hash of the bytes is a hash of the value.
* Times are RFC 3339 UTC with seconds and ``Z`` (``2026-11-22T08:00:00Z``): :func:`format_time`,
  :func:`parse_time`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import orjson
import rfc8785

from sync_protocol.errors import MalformedError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32
_TIME_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z\Z")


def _check(value: Any, depth: int = 0) -> bool:
    """Raise MalformedError outside the allowed subset; return True when every object key is in the Basic
    Multilingual Plane (then code-point order equals RFC 8785's UTF-16 order and the fast path applies)."""
    if depth > MAX_DEPTH:
        raise MalformedError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise MalformedError("integer outside ±(2^53−1)", value=str(value))
        return True
    if isinstance(value, float):
        raise MalformedError("floats are not allowed in tmis-sync/1 (use integers or decimal strings)")
    if isinstance(value, list | tuple):
        bmp = True
        for v in value:
            bmp = _check(v, depth + 1) and bmp
        return bmp
    if isinstance(value, dict):
        bmp = True
        for k, v in value.items():
            if not isinstance(k, str):
                raise MalformedError("object keys must be strings")
            bmp = _check(v, depth + 1) and bmp and (k.isascii() or max(map(ord, k)) < 0x10000)
        return bmp
    raise MalformedError(f"value of type {type(value).__name__} cannot be encoded")


def _fast(value: Any) -> bytes | None:
    """RFC 8785 bytes by orjson, or None when it might differ (callers fall back to rfc8785).

    For the allowed subset (no floats, integers within ±(2^53−1)) with BMP object keys the two agree: the
    same key order (code points, which equal UTF-16 code units inside the BMP), literal non-ASCII, the same
    escapes (\\", \\\\, \\b \\f \\n \\r \\t, lower-case \\u00xx for other control characters). Property
    tests check the equivalence against the rfc8785 package; lone surrogates fail to encode and fall back."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return None


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``. Raises MalformedError for values outside the allowed subset."""
    if _check(value):
        fast = _fast(value)
        if fast is not None:
            return fast
    return _slow(value)


def _slow(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as e:  # e.g. lone surrogates
        raise MalformedError(f"cannot canonicalise: {e}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedError("duplicate object key", key=k)
        out[k] = v
    return out


def _no_float(text: str) -> Any:
    raise MalformedError("floats are not allowed in tmis-sync/1", value=text)


def _no_constant(text: str) -> Any:
    raise MalformedError(f"{text} is not allowed")


def _int(text: str) -> int:
    if len(text) > 17:
        raise MalformedError("integer outside ±(2^53−1)", value=text[:32])
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise MalformedError("integer outside ±(2^53−1)", value=text)
    return value


def parse_json(data: bytes) -> Any:
    """Strictly parse JSON bytes (see module rules). Raises MalformedError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("expected bytes")
    try:
        text = bytes(data).decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise MalformedError(f"not UTF-8 at byte {e.start}") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_constant, parse_int=_int
        )
    except MalformedError:
        raise
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise MalformedError(f"not JSON: {e}") from None
    _check(value)
    return value


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_FOUR_BYTE_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")  # UTF-8 beyond the BMP (F5–FF: not UTF-8)


def beyond_bmp(raw: bytes) -> bool:
    """Whether JSON bytes may hold a code point beyond the Basic Multilingual Plane: a 4-byte UTF-8 sequence or an
    escaped surrogate (bytes F5–FF are no UTF-8 at all, which the parser refuses). Only there can key order by
    code point differ from RFC 8785's order by UTF-16 code unit, so the fast paths leave such input to the
    strict path. Single-byte searches, so it costs little even over a whole batch."""
    return any(map(raw.__contains__, _FOUR_BYTE_LEADS)) or b"\\ud" in raw or b"\\uD" in raw


def _depth_ok(data: bytes) -> bool:
    """Nesting within MAX_DEPTH. Cheap: only counted when the value has more than MAX_DEPTH openings."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return True
    depth = 0
    for c in _STRING.sub(b"", data):
        if c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif c in (0x5D, 0x7D):
            depth -= 1
    return True


# A number token that could be a float or an integer beyond ±(2^53−1). In compact JSON every number follows
# ':', '[' or ','; a match inside a string only costs the fast path.
_RISKY_NUMBER = re.compile(rb"[:,\[]-?[0-9]+[.eE]|[:,\[]-?[0-9]{16}")


def parse_canonical_unchecked_numbers(raw: bytes) -> Any | None:
    """The value of ``raw`` when ``raw`` is orjson's encoding of what it parses to, else None — **without**
    screening numbers. For callers whose schema checks the type of every value (core records): they must
    refuse floats and integers outside ±(2^53−1) anywhere in the result, and let :func:`parse_canonical`
    name the reason. Inside that subset orjson's output is RFC 8785 (see :func:`_fast`), so the equality
    proves ``raw`` canonical.

    Screens before parsing: an object or array at the top, no code point beyond the BMP (no 4-byte UTF-8
    sequence, no escaped surrogate; key order could differ there), nesting within MAX_DEPTH. orjson itself
    refuses invalid UTF-8, lone surrogates, ``NaN`` and trailing garbage; a duplicate key, whitespace or any
    other byte form cannot survive the comparison."""
    if raw[:1] not in (b"{", b"[") or beyond_bmp(raw) or not _depth_ok(raw):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == raw else None


def _parse_fast(raw: bytes) -> Any | None:
    """:func:`parse_canonical_unchecked_numbers` after screening out every number token that could be a
    float or an integer beyond ±(2^53−1), so the result needs no further checks."""
    if _RISKY_NUMBER.search(raw):
        return None
    return parse_canonical_unchecked_numbers(raw)


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must be the RFC 8785 form of their own value.

    Fast path: :func:`_parse_fast` (orjson, no Python walk). Anything it cannot prove canonical, and every
    refusal, goes through the full strict path, which names the exact reason. A hypothesis test checks that
    the two paths accept exactly the same inputs."""
    raw = bytes(data)
    value = _parse_fast(raw)
    if value is not None:
        return value
    value = parse_json(raw)
    if canonical_bytes(value) != raw:
        raise MalformedError("bytes are not in canonical (RFC 8785) form")
    return value


def format_time(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise MalformedError("naive datetime")
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise MalformedError(f"{field} must be an RFC 3339 UTC time like 2026-01-02T03:04:05Z", field=field)
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise MalformedError(f"{field} is not a real time", field=field) from None
