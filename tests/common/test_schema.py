"""Validators built from the catalogue: every group, every cross-field rule kind, bilingual errors."""

from __future__ import annotations

import datetime as dt

import pytest

from common.catalogue import FieldDef, load_catalogue
from common.catalogue.schema import build_validator
from common.errors import ValidationError
from tests.factories import BAD_RECORDS, GOOD_RECORDS, resident_id

CAT = load_catalogue()
THIS_YEAR = dt.date.today().year  # noqa: DTZ011


def failing(group: str, record: dict, *, school_type: str | None = None, partial: bool = False) -> dict[str, list]:
    with pytest.raises(ValidationError) as exc:
        build_validator(CAT, group, school_type=school_type).validate(record, partial=partial)
    out: dict[str, list] = {}
    for e in exc.value.details["errors"]:
        assert e["group"] == group and e["reason_zh"] and e["reason_en"] and e["label"] is not None
        out.setdefault(e["field"], []).append(e)
    return out


@pytest.mark.parametrize("group", sorted(GOOD_RECORDS))
def test_every_group_accepts_a_good_record(group):
    result = build_validator(CAT, group).validate(GOOD_RECORDS[group])
    assert result.data  # normalised, JSON-native
    for v in result.data.values():
        assert isinstance(v, str | int | list) and not isinstance(v, float)


@pytest.mark.parametrize("group", sorted(BAD_RECORDS))
def test_every_group_rejects_a_bad_record_naming_the_field(group):
    changes, field = BAD_RECORDS[group]
    record = {**GOOD_RECORDS[group], **changes}
    errors = failing(group, record)
    assert field in errors


def test_all_groups_are_covered_by_the_samples():
    assert set(GOOD_RECORDS) == set(CAT.groups) == set(BAD_RECORDS)


def test_errors_are_bilingual_and_name_group_and_label():
    errors = failing("JBXX", {**GOOD_RECORDS["JBXX"], "XBM": "7"})
    e = errors["XBM"][0]
    assert e["label"] == "性别" and e["group_label"] == "基本信息"
    assert "代码表 XB" in e["reason_zh"] and "code table XB" in e["reason_en"]


BASE = GOOD_RECORDS["JBXX"]


@pytest.mark.parametrize(
    ("name", "changes", "field", "fragment"),
    [
        (
            "民族 only when 国籍 is 156",
            {"GJDQM": "840", "SFZJLXM": "A", "SFZJH": "E1234567", "ZZMMM": None},
            "MZM",
            "only when",
        ),
        (
            "政治面貌 only when 国籍 is 156",
            {"GJDQM": "840", "SFZJLXM": "A", "SFZJH": "E1234567", "MZM": None},
            "ZZMMM",
            "only when",
        ),
        ("民族 required for Chinese nationals", {"MZM": None}, "MZM", "required when"),
        ("参加工作年月 after 出生日期", {"CJGZNY": "1988-03"}, "CJGZNY", "after"),
        ("进本校年月 not before 参加工作年月", {"JBXNY": "2011-01"}, "JBXNY", "not before"),
        ("政治面貌 13 is exclusive", {"ZZMMM": ["01", "13"]}, "ZZMMM", "cannot be combined"),
        ("用人形式 required when not 在编", {"SFZB": "0"}, "YRXSM", "required when"),
        ("岗位等级 cascades from 岗位类别", {"XRGWDJM": "301"}, "XRGWDJM", "not valid under"),
        ("no degree means no degree name", {"ZGXWCCM": "0"}, "ZGXWM", "must be empty"),
        ("birth date must match the ID number", {"CSRQ": "1988-03-16"}, "CSRQ", "birth date"),
        ("gender must match the ID number", {"XBM": "2"}, "XBM", "gender"),
        (
            "ID number check character",
            {"SFZJH": resident_id()[:17] + ("0" if resident_id()[17] != "0" else "1")},
            "SFZJH",
            "check character",
        ),
        ("grassroots dates required when 参加", {"JCFWXMKSNY": None}, "JCFWXMKSNY", "required when"),
        ("unknown field", {"NOPE": "1"}, "NOPE", "not a field"),
    ],
)
def test_cross_field_rules_name_the_field(name, changes, field, fragment):
    record = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    errors = failing("JBXX", record)
    assert field in errors, f"{name}: {errors}"
    assert any(fragment in e["reason_en"] for e in errors[field]), errors[field]


@pytest.mark.parametrize(
    ("group", "changes", "field", "fragment"),
    [
        ("GWPR", {"JRGWLBM": "1", "JRGWDJM": "101", "SFJRQTGW": "1"}, "JRGWLBM", "must differ"),
        ("GWPR", {"SFJRQTGW": "1"}, "JRGWLBM", "required when"),
        ("GWPR", {"XJZWM": ["00", "01"]}, "XJZWM", "cannot be combined"),
        ("JBDY", {"ND": THIS_YEAR}, "ND", "only completed years"),
        ("NDKH", {"KHND": THIS_YEAR + 1}, "KHND", "after the current year"),
        ("HWYX", {"SFYHWYXJL": "0"}, "KSRQ", "must be empty"),
        ("JLLG", {"JLLGLXM": "0"}, "KSNY", "must be empty"),
        ("ZYJSZWPR", {"PRKSNY": None}, "PRKSNY", "required when"),
        ("SDXX", {"CFLBM": "1"}, "CFYY", "required when"),
        ("JYJX", {"RKZKM": "9"}, "RKZKSM", "required when"),
        ("JNZS", {"YYZSMCM": "9"}, "ZSMC", "required when"),
        ("XXJL", {"XWCCM": "2"}, "XWMCM", "not valid under"),
    ],
)
def test_rules_of_other_groups(group, changes, field, fragment):
    record = {k: v for k, v in {**GOOD_RECORDS[group], **changes}.items() if v is not None}
    errors = failing(group, record)
    assert field in errors, errors
    assert any(fragment in e["reason_en"] for e in errors[field]), errors[field]


def test_partial_validation_checks_values_but_not_required():
    v = build_validator(CAT, "JBXX")
    assert v.validate({"XM": "王五"}, partial=True).data == {"XM": "王五"}
    errors = failing("JBXX", {"XM": "王五", "XBM": "5"}, partial=True)
    assert list(errors) == ["XBM"]


def test_normalisation():
    data = build_validator(CAT, "JBDY").validate({"ND": "2023", "JBGZ": 4800, "WXYJM": "6,1"}).data
    assert data == {"ND": 2023, "JBGZ": "4800.00", "WXYJM": ["1", "6"]}
    data = build_validator(CAT, "JBXX").validate({"SFZJLXM": "1", "SFZJH": "110105491231002"}, partial=True).data
    assert data["SFZJH"] == "11010519491231002X"


def test_floats_are_refused_for_money_and_integers():
    errors = failing("JBDY", {"ND": 2023, "JBGZ": 4800.5})
    assert "JBGZ" in errors


def test_stage_restriction():
    with pytest.raises(ValidationError, match="not collected"):
        build_validator(CAT, "JYJX", school_type="111")
    build_validator(CAT, "JYJX", school_type="342").validate(GOOD_RECORDS["JYJX"])


def test_custom_indicator_validates_like_catalogue_fields():
    ext = CAT.with_custom_fields(
        [
            FieldDef("JBXX", "X_GGJSLX", "骨干教师类型", "key-teacher type", "code", "RYJB", False, "school", False),
            FieldDef("JBXX", "X_JXJYBH", "继续教育编号", "CPD number", "text", None, False, "school", False, 8),
            FieldDef(
                "JBXX",
                "X_YEYONLY",
                "幼儿园专用",
                "kindergarten only",
                "text",
                None,
                False,
                "school",
                False,
                stages=frozenset({"kindergarten"}),
            ),
        ]
    )
    v = build_validator(ext, "JBXX", school_type="342")
    ok = v.validate({**BASE, "X_GGJSLX": "3", "X_JXJYBH": "BJ123"}).data
    assert ok["X_GGJSLX"] == "3"
    with pytest.raises(ValidationError) as exc:
        v.validate({**BASE, "X_GGJSLX": "7", "X_JXJYBH": "BJ1234567", "X_YEYONLY": "x"})
    fields = {e["field"] for e in exc.value.details["errors"]}
    assert fields == {"X_GGJSLX", "X_JXJYBH", "X_YEYONLY"}
