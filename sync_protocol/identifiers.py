"""Identifiers carried by the protocol: province codes and teacher numbers (一人一号).

* A province code is two digits from the fixed list of the 32 provincial-level units (66 = 新疆生产建设兵团).
  It is checked against that allow-list before it is used anywhere, including file names, so a code like
  ``../x`` can never become a path.
* A teacher number is assigned once by the province where the teacher is first registered and kept for
  life, across provinces: ``PP`` (province) + 10-digit sequence + ISO 7064 MOD 11-2 check character
  (0–9 or X) over the first 12 digits, 13 characters in all (e.g. ``4400000000018``). Unique without
  asking the national node, because the prefix is the assigning province's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import repeat
from typing import Any

from sync_protocol.errors import MalformedError

PROVINCE_CODES: frozenset[str] = frozenset(
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
_TEACHER_NUMBER = re.compile(r"[0-9]{12}[0-9X]")  # ASCII digits only; used with fullmatch
# ISO 7064 MOD 11-2 over 12 digits: digit i (0-based) weighs 2^(12-i) mod 11, and 13 ≡ 2 (mod 11), so the weighted
# sum is 2 × (the 12 digits read as a base-13 number) modulo 11 — one C call per teacher number, which matters
# because every record of every batch is checked (a test checks it against python-stdnum in every position).
_CHECK_CHARACTERS = "0123456789X"


def check_character(digits12: str) -> str:
    """The ISO 7064 MOD 11-2 check character (0–9 or X) of 12 ASCII digits."""
    if len(digits12) != 12 or not digits12.isascii() or not digits12.isdigit():  # int(…, 13) takes more than digits
        raise ValueError("check_character takes 12 ASCII digits")
    return check_characters([digits12])


def check_characters(digit_strings: Iterable[str]) -> str:
    """The check characters of many digit strings, concatenated, for a whole batch at once. Callers must have
    checked that each is 12 ASCII digits (:func:`check_character` does for one)."""
    return "".join([_CHECK_CHARACTERS[(1 - 2 * x) % 11] for x in map(int, digit_strings, repeat(13))])


def check_province(value: Any, field: str = "province") -> str:
    if not isinstance(value, str) or value not in PROVINCE_CODES:
        raise MalformedError(f"{field} must be one of the 32 province codes", field=field, value=str(value)[:40])
    return value


def make_teacher_number(province: str, sequence: int) -> str:
    check_province(province)
    if not 1 <= sequence <= 9_999_999_999:
        raise MalformedError("teacher number sequence out of range", sequence=sequence)
    body = f"{province}{sequence:010d}"
    return body + check_character(body)


def check_teacher_number(value: Any, field: str = "teacher_number") -> str:
    if not isinstance(value, str) or not _TEACHER_NUMBER.fullmatch(value):
        raise MalformedError(f"{field} must be 12 digits and a check character", field=field)
    check_province(value[:2], field)
    if check_character(value[:12]) != value[12]:
        raise MalformedError(f"{field} has a wrong check character", field=field, value=value)
    return value
