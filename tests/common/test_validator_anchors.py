"""Validators take ASCII digits only and anchor at the very end of the string.

In Python regular expressions ``$`` also matches before a trailing newline and ``\\d`` matches any Unicode
decimal digit, so ``"4400000000018\\n"`` or Arabic-Indic digits used to pass several checks."""

from __future__ import annotations

import pytest

from common import divisions, identity, orgcodes
from sync_protocol import errors as E
from sync_protocol._schema import hex_hash
from sync_protocol.canonical import parse_time
from sync_protocol.identifiers import check_teacher_number, make_teacher_number
from sync_protocol.records import CoreRecord, record_from_json

TN = make_teacher_number("44", 1)
ARABIC_4 = "\u0664"


@pytest.mark.parametrize("value", [TN + "\n", ARABIC_4 + TN[1:], TN[:-1] + "\n"])
def test_teacher_number(value):
    with pytest.raises(E.MalformedError):
        check_teacher_number(value)


def test_hashes_times_and_codes():
    with pytest.raises(E.MalformedError):
        hex_hash({"h": "a" * 64 + "\n"}, "h", "x")
    with pytest.raises(E.MalformedError):
        parse_time("2026-11-22T08:00:00Z\n", "t")
    rec = CoreRecord(TN, "44", 1, "upsert", {"JBXX\n": {"XM": "李明"}}, ()).to_json()
    with pytest.raises(E.MalformedError):
        record_from_json(rec)
    rec = CoreRecord(TN, "44", 1, "upsert", {"JBXX": {"XM": "李明"}}, ("JBDY.JBGZ\n",)).to_json()
    with pytest.raises(E.MalformedError):
        record_from_json(rec)


def test_identity_school_and_division_codes():
    good = "11010519491231002X"
    assert identity.validate_identity("1", good + "\n").number == good  # surrounding whitespace is trimmed
    with pytest.raises(identity.IdentityError):
        identity.validate_identity("1", ARABIC_4 + good[1:])
    with pytest.raises(divisions.DivisionCodeError):
        divisions.validate_division("440106\n")
    with pytest.raises(orgcodes.OrgCodeError):
        orgcodes.parse_school_id("21" + ARABIC_4 + "4000001", school_classes=frozenset({"21"}))


def test_teacher_number_check_character_agrees_with_python_stdnum():
    """The base-13 ISO 7064 MOD 11-2 equals python-stdnum's on every three-digit chunk in every position
    (the weighted sum is linear in the chunks, so this covers all 10^12 inputs); anything but 12 ASCII
    digits is refused rather than read by int()."""
    from stdnum.iso7064 import mod_11_2

    from sync_protocol.identifiers import check_character

    for k in range(4):
        for n in range(1000):
            digits = ("0" * 3 * k + f"{n:03d}").ljust(12, "0")
            assert check_character(digits) == mod_11_2.calc_check_digit(digits), digits
    for digits in ("440000000001", "110105194912", "999999999999", "123456789012"):
        assert check_character(digits) == mod_11_2.calc_check_digit(digits)
    for bad in ("44000000000a", "+44000000000", "4400_0000000", " 44000000000", "4400000000", ARABIC_4 + "0" * 11):
        with pytest.raises(ValueError, match="12 ASCII digits"):
            check_character(bad)
