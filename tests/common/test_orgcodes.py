"""Division derivation, 学校标识码 and 统一社会信用代码."""

from __future__ import annotations

import pytest

from common.catalogue import load_catalogue
from common.divisions import DivisionCodeError, derive, lookup, validate_division
from common.orgcodes import OrgCodeError, parse_credit_code, parse_school_id


@pytest.mark.parametrize(
    ("code", "province", "city", "county"),
    [
        ("440106", "440000", "440100", "440106"),  # 广州市天河区
        ("440100", "440000", "440100", None),  # 广州市
        ("110105", "110000", None, "110105"),  # 北京市朝阳区: municipality, no prefecture level
        ("500101", "500000", None, "500101"),  # 重庆市万州区
        ("429004", "420000", None, "429004"),  # 仙桃市: 省直辖县级行政单位
        ("659001", "650000", None, "659001"),  # 石河子市 (兵团)
        ("441900", "440000", "441900", None),  # 东莞市: no county level
        ("442000", "440000", "442000", None),  # 中山市
        ("440000", "440000", None, None),
    ],
)
def test_derive(code, province, city, county):
    path = derive(code)
    assert (path.province, path.city, path.county) == (province, city, county)


@pytest.mark.parametrize("code", ["44010", "4401066", "ab0106", "990101", "440006"])
def test_malformed_division_codes(code):
    with pytest.raises(DivisionCodeError):
        derive(code)


def test_division_names_and_retired_codes():
    assert lookup("440106").name == "天河区"
    assert lookup("110103").name_in(2005) == "崇文区" and not lookup("110103").current
    assert validate_division("110103")  # retired: a warning
    assert validate_division("440106") == []


def test_school_identifier():
    classes = load_catalogue().school_classes
    sid = parse_school_id("4111010001", school_classes=classes)  # 北京大学
    assert (sid.school_class, sid.province, sid.sequence) == ("41", "11", "010001")
    parse_school_id("2144000123", school_classes=classes, school_type="211")
    with pytest.raises(OrgCodeError, match="disagrees"):
        parse_school_id("2144000123", school_classes=classes, school_type="342")
    for bad in ("214400012", "1044000123", "2199000123", "21440001x3"):
        with pytest.raises(OrgCodeError):
            parse_school_id(bad, school_classes=classes)


def test_unified_social_credit_code():
    cc = parse_credit_code("91110000600037341L")
    assert cc.organisation_code == "600037341" and cc.division == "110000"
    with pytest.raises(OrgCodeError):
        parse_credit_code("91110000600037341M")
