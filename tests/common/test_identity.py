"""Identity-document rules (GB 11643 and the other document types)."""

from __future__ import annotations

import datetime as dt

import pytest

from common.identity import IdentityError, check_character, convert_legacy_15, validate_identity
from tests.factories import resident_id


def test_check_character_matches_the_standards_worked_example():
    # GB 11643-1999 annex example: 11010519491231002X
    assert check_character("11010519491231002") == "X"
    assert validate_identity("1", "11010519491231002x").number == "11010519491231002X"


@pytest.mark.parametrize(
    "number",
    [
        resident_id(),
        resident_id("110105", "20000229", "002"),
        resident_id("650102", "19700101", "999"),
        "11010519491231002X",
    ],
)
def test_real_format_numbers_are_accepted(number):
    info = validate_identity("1", number, today=dt.date(2026, 11, 22))
    assert info.number == number
    assert info.birth_date == dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert info.gender == ("1" if int(number[16]) % 2 else "2")
    assert info.warnings == ()


def test_bad_check_character_is_refused_with_the_expected_one():
    good = resident_id()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(IdentityError) as e:
        validate_identity("1", bad)
    assert good[17] in e.value.reason_zh and "check character" in e.value.reason_en


@pytest.mark.parametrize("birth", ["19880230", "19881301", "20990101", "18991231", "19880000"])
def test_impossible_birth_dates_are_refused(birth):
    first17 = "440106" + birth + "123"
    with pytest.raises(IdentityError):
        validate_identity("1", first17 + check_character(first17), today=dt.date(2026, 11, 22))


@pytest.mark.parametrize(
    "number", ["44010619880315123", "4401061988031512345", "44010619880315123Y", "4401061988031512A4", ""]
)
def test_wrong_lengths_and_characters_are_refused(number):
    with pytest.raises(IdentityError):
        validate_identity("1", number)


def test_unknown_region_is_a_warning_not_an_error():
    info = validate_identity("1", resident_id(region="999999"))
    assert info.region == "999999"
    assert any("999999" in w for w in info.warnings)


def test_legacy_15_digit_numbers_are_converted():
    assert convert_legacy_15("110105491231002") == "11010519491231002X"
    info = validate_identity("1", "110105491231002")
    assert info.number == "11010519491231002X"
    assert info.warnings and "15" in info.warnings[0]


def test_hong_kong_macao_taiwan_residence_permits():
    for prefix in ("810000", "820000", "830000"):
        number = resident_id(region=prefix, birth="19900101")
        assert validate_identity("C", number).region == prefix
        with pytest.raises(IdentityError, match="type C"):
            validate_identity("1", number)
    with pytest.raises(IdentityError):
        validate_identity("C", resident_id(region="440106"))


def test_foreign_permanent_residence_cards():
    first17 = "9" + "11" + "840" + "19850612" + "001"
    info = validate_identity("D", first17 + check_character(first17))
    assert info.birth_date == dt.date(1985, 6, 12) and info.gender == "1"
    with pytest.raises(IdentityError):
        validate_identity("D", first17 + ("0" if check_character(first17) != "0" else "1"))
    assert validate_identity("D", "USA110123456789").warnings  # 2017 card: format only
    with pytest.raises(IdentityError):
        validate_identity("D", "12345")


def test_passports_have_no_checksum_but_a_format():
    assert validate_identity("A", "e12345678").number == "E12345678"
    with pytest.raises(IdentityError):
        validate_identity("A", "E1234 5678;")
    with pytest.raises(IdentityError):
        validate_identity("A", "X" * 31)
