"""Text hygiene shared by every input and every spreadsheet output (pure, standard library only).

Input (the catalogue validator, unit names, import cells): a text value must not contain

* control characters (Unicode category ``Cc``: C0 controls including tab, CR and LF, DEL, C1 controls) —
  they are invisible, break spreadsheets (an xlsx cannot hold most of them) and fields are single-line;
* lone surrogates (``Cs``) — not characters at all; they cannot be stored as UTF-8;
* the bidirectional override and isolate controls (U+202A–U+202E, U+2066–U+2069) — they make text read
  differently from what it is (the "Trojan Source" trick);
* U+FEFF (a byte-order mark inside text).

:func:`forbidden_character` finds the first one, so the error can say which and where.

Output (CSV and xlsx exports, error reports): a cell that a spreadsheet would read as a formula is made
inert (OWASP "CSV injection"): text starting with ``=``, ``+``, ``-``, ``@``, tab or CR (and their full-width
forms, which Chinese input methods produce) gets a leading apostrophe in CSV (:func:`csv_cell`); in xlsx the
cell is written as text with Excel's quote-prefix style, the value unchanged. Control characters already
stored (before this rule) are replaced by U+FFFD in outputs (:func:`scrub`) so one bad value can never make a
whole export fail. Imports strip the apostrophe that an export added (:func:`strip_neutraliser`), so an
exported file imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from typing import Any

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
NEUTRALISER = "'"


def _forbidden(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS or ch == "\ufeff"


def forbidden_character(text: str) -> tuple[int, str] | None:
    """The (1-based position, character) of the first character a text field must not hold, or None."""
    for i, ch in enumerate(text, start=1):
        if _forbidden(ch):
            return i, ch
    return None


def forbidden_reason(text: str) -> tuple[str, str] | None:
    """(reason_zh, reason_en) naming the first forbidden character of ``text``, or None when it is clean."""
    found = forbidden_character(text)
    if found is None:
        return None
    pos, ch = found
    point = f"U+{ord(ch):04X}"
    if ch in "\r\n":
        return (
            f"不能包含换行符（第 {pos} 个字符）",
            f"must not contain a line break (character {pos})",
        )
    return (
        f"含有不可见的控制字符 {point}（第 {pos} 个字符），请删除后重新填写",
        f"contains the invisible control character {point} (character {pos}); remove it",
    )


def scrub(text: str) -> str:
    """``text`` with every forbidden character replaced by U+FFFD (for outputs of data stored before the rule)."""
    if forbidden_character(text) is None:
        return text
    return "".join("\ufffd" if _forbidden(ch) else ch for ch in text)


def formula_like(text: str) -> bool:
    """A spreadsheet would read this text as a formula (or a command) when it is typed into a cell."""
    return text.startswith(FORMULA_LEADS)


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell: text scrubbed and, when formula-like, prefixed with an apostrophe."""
    if not isinstance(value, str):
        return value
    value = scrub(value)
    return NEUTRALISER + value if formula_like(value) else value


def csv_bytes(rows: Iterable[Iterable[Any]]) -> bytes:
    """A CSV file (UTF-8 with BOM, for Excel) whose every cell is inert (:func:`csv_cell`)."""
    buf = io.StringIO()
    csv.writer(buf).writerows([csv_cell(v) for v in r] for r in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def strip_neutraliser(text: str) -> str:
    """Undo :func:`csv_cell`'s apostrophe (an exported file imports back as it was)."""
    if text.startswith(NEUTRALISER) and formula_like(text[1:]):
        return text[1:]
    return text
