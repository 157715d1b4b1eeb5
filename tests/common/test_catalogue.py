"""The catalogue loads, is complete, and refuses defective data files."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

import common.catalogue as catalogue_mod
from common.catalogue import load_catalogue
from common.errors import CatalogueError

EXPECTED_GROUPS = [
    "基本信息",
    "学习经历",
    "工作经历",
    "岗位聘任",
    "专业技术职务聘任",
    "基本待遇",
    "年度考核",
    "教师资格",
    "师德信息",
    "教育教学",
    "教学科研成果及获奖",
    "入选人才项目",
    "国内培训",
    "海外研修(访学)",
    "技能及证书",
    "交流轮岗",
    "联系方式",
]
REQUIRED_TABLES = [
    "BXLX",
    "XB",
    "MZ",
    "ZZMM",
    "XL",
    "XW",
    "HYZK",
    "JKZK",
    "GATQW",
    "SFZJLX",
    "JZGLB",
    "JZGLY",
    "GWLB",
    "GWDJ",
    "ZXXKC",
    "RYZT",
    "GJDQ",
]
BEIJING_ANNEX_1 = [
    "111",
    "119",
    "211",
    "218",
    "219",
    "221",
    "222",
    "228",
    "229",
    "311",
    "312",
    "319",
    "321",
    "329",
    "331",
    "332",
    "341",
    "342",
    "345",
    "349",
    "351",
    "352",
    "371",
    "361",
    "362",
    "363",
    "364",
    "365",
    "368",
    "369",
    "511",
    "512",
    "513",
    "514",
    "519",
    "411",
    "412",
    "413",
    "414",
    "415",
    "419",
    "421",
    "422",
    "423",
    "424",
    "425",
    "426",
    "429",
]


def test_seventeen_groups_in_national_order():
    cat = load_catalogue()
    assert [g.label for g in cat.ordered_groups] == EXPECTED_GROUPS
    single = {g.label for g in cat.groups.values() if not g.multiple}
    assert single == {"基本信息", "联系方式"}


def test_every_required_code_table_loads_and_is_not_empty():
    cat = load_catalogue()
    for table_id in REQUIRED_TABLES:
        assert len(cat.table(table_id).codes) > 0, table_id
    assert cat.table("GJDQ").label_of("156") == "中国"
    assert cat.table("GJDQ").label_of("344") == "中国香港"


def test_code_table_files_have_no_duplicate_codes():
    # independent of the loader: read every CSV as a plain file
    root = resources.files("common.catalogue").joinpath("data", "code_tables")
    files = [p for p in root.iterdir() if p.name.endswith(".csv")]
    assert len(files) >= 40
    for path in files:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        codes = [r["code"] for r in rows]
        assert len(codes) == len(set(codes)), f"{path.name} has duplicate codes"
        assert all(r["label"].strip() for r in rows), f"{path.name} has an empty label"


def test_school_type_table_has_every_code_of_the_beijing_annex():
    bxlx = load_catalogue().table("BXLX")
    missing = [c for c in BEIJING_ANNEX_1 if c not in bxlx]
    assert not missing
    assert all(code.stage for code in bxlx.codes.values())


def test_post_level_cascade_data():
    gwdj = load_catalogue().table("GWDJ")
    assert gwdj.codes["101"].parents == ("1", "2")
    assert gwdj.codes["210"].parents == ("3",)
    assert set(gwdj.codes["998"].parents) == {"1", "2", "3", "4"}


def test_core_indicators_cover_what_the_issue_requires():
    cat = load_catalogue()
    core = cat.core_field_codes()
    assert {
        "XM",
        "XBM",
        "SFZJLXM",
        "SFZJH",
        "CSRQ",
        "JZGLBM",
        "SFZB",
        "CJGZNY",
        "XRGWLBM",
        "XRGWDJM",
        "ZGXLM",
        "RYZTM",
    } <= set(core["JBXX"])
    assert {"HDXLM", "XWCCM"} <= set(core["XXJL"])
    assert {"GWLBM", "GWDJM"} <= set(core["GWPR"])
    assert {"PRZYJSZWM"} <= set(core["ZYJSZWPR"])
    assert {"JSZGZZLM"} <= set(core["JSZG"])
    assert {"KHND", "KHJGM"} <= set(core["NDKH"])
    assert core["JBDY"] == [] and core["SDXX"] == [] and core["LXFS"] == []
    assert "JBDY.JBGZ" in cat.withheld_field_codes()


def test_school_only_fields_are_not_teacher_fillable():
    cat = load_catalogue()
    assert cat.group("NDKH").field("KHJGM").filled_by == "school"
    assert all(f.filled_by != "teacher" for f in cat.group("JBDY").fields)
    assert all(f.filled_by != "teacher" for f in cat.group("SDXX").fields)
    assert all(f.filled_by != "teacher" for f in cat.group("ZYJSZWPR").fields)
    assert cat.group("JSZG").field("DQZCJLM").filled_by == "workflow"


def test_stages():
    cat = load_catalogue()
    assert not cat.group("JYJX").applies_to(cat.stage_of("111"))
    assert cat.group("JLLG").applies_to(cat.stage_of("312"))
    assert not cat.group("JLLG").applies_to(cat.stage_of("411"))
    assert cat.school_classes == frozenset(
        {"11", "21", "22", "31", "32", "33", "34", "35", "36", "37", "41", "42", "51", "91", "92", "93"}
    )


def _load_with(monkeypatch, name: str, content: bytes) -> None:
    real = catalogue_mod._data_bytes

    def fake(n: str) -> bytes:
        return content if n == name else real(n)

    monkeypatch.setattr(catalogue_mod, "_data_bytes", fake)
    catalogue_mod.load_catalogue.cache_clear()
    try:
        catalogue_mod.load_catalogue()
    finally:
        monkeypatch.undo()
        catalogue_mod.load_catalogue.cache_clear()


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("code_tables/XB.csv", "code,label\n1,男\n1,女\n".encode(), "duplicate code '1'"),
        ("code_tables/XB.csv", b"code,label\n1,\n", "empty code or label"),
        (
            "fields.csv",
            "group,code,label,label_en,type,code_table,required,filled_by,core,max_length,default\n"
            "JBXX,XM,姓名,name,colour,,R,teacher,Y,50,\n".encode(),
            "unknown type 'colour'",
        ),
        (
            "fields.csv",
            "group,code,label,label_en,type,code_table,required,filled_by,core,max_length,default\n"
            "JBXX,XBM,性别,gender,code,NOPE,R,teacher,Y,,\n".encode(),
            "unknown code table 'NOPE'",
        ),
    ],
)
def test_defective_data_files_are_refused_with_the_place_named(monkeypatch, name, content, fragment):
    with pytest.raises(CatalogueError) as exc:
        _load_with(monkeypatch, name, content)
    assert fragment in exc.value.message


def test_rule_naming_a_missing_field_is_refused(monkeypatch):
    raw = (
        catalogue_mod._data_bytes("groups.toml")
        .decode()
        .replace('fields = ["RXNY", "BYNY"]', 'fields = ["RXNY", "NOSUCH"]')
    )
    with pytest.raises(CatalogueError, match="unknown field 'NOSUCH'"):
        _load_with(monkeypatch, "groups.toml", raw.encode())


def test_custom_indicators_extend_a_group_and_are_never_core():
    from common.catalogue import FieldDef

    cat = load_catalogue()
    ext = cat.with_custom_fields(
        [FieldDef("JBXX", "X_JXJYBH", "继续教育编号", "CPD number", "text", None, False, "school", True, 20)],
        version="v1",
    )
    f = ext.group("JBXX").field("X_JXJYBH")
    assert f.custom and not f.core
    assert "JBXX.X_JXJYBH" in ext.withheld_field_codes()
    with pytest.raises(CatalogueError, match="already exists"):
        cat.with_custom_fields([FieldDef("JBXX", "XM", "x", "x", "text", None, False, "school", False)])
    with pytest.raises(CatalogueError, match="unknown code table"):
        cat.with_custom_fields([FieldDef("JBXX", "X_A", "x", "x", "code", "NOPE", False, "school", False)])
