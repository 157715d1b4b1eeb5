"""Batch import/export on SQLite and PostgreSQL: templates, per-row errors, idempotence, audited export."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from common.errors import ValidationError
from provincial_node.audit_trail import trail
from provincial_node.teacher_files import files, importexport, review
from provincial_node.teacher_files.models import Teacher
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx

P = "44"
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode()


def _jbxx_rows(province, seqs, bad=()):
    group = province.catalogue.group("JBXX")
    header = importexport.header_row(group)
    codes = [f.code for f in importexport._columns(group)]
    rows = [header]
    for seq in seqs:
        rec = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
        rec.update(
            SFZJH=resident_id("440106", "19880315", seq),
            XBM="1" if int(seq[-1]) % 2 else "2",
            XM=f"教师{seq}",
            MZM="汉族",
            ZZMMM="01",
        )  # a label and a comma-free multi-code cell
        if seq in bad:
            rec.update(XBM="7")  # a bad code → the row is refused
        rows.append([",".join(rec[c]) if isinstance(rec.get(c), list) else rec.get(c, "") for c in codes])
    return rows


def test_templates_have_chinese_headers_and_code_lists(province):
    xlsx = importexport.template(province.ctx(None), "JBXX", "xlsx")
    wb = load_workbook(io.BytesIO(xlsx))
    headers = [c.value for c in wb.worksheets[0][1]]
    assert "姓名(XM)*" in headers and "民族(MZM)" in headers
    assert not any("RYZTM" in h for h in headers)  # workflow fields are not imported
    codes = {(r[1], r[2]) for r in wb["代码表"].iter_rows(min_row=2, values_only=True)}
    assert ("MZ", "01") in codes and ("XB", "2") in codes
    text = importexport.template(province.ctx(None), "GNPX", "csv").decode("utf-8-sig")
    assert text.startswith("教师编号(JSBH),培训年度(PXND)*")


def test_import_reports_bad_rows_writes_good_ones_and_is_idempotent(province):
    s, school = province.session, province.units["2144000001"].id
    data = _csv(_jbxx_rows(province, ["401", "402", "403", "404"], bad={"402", "404"}))
    result = importexport.import_file(ctx(s, province.actor("school1_info"), province=P), school, "JBXX", data, "csv")
    assert (result["created"], result["failed"]) == (2, 2)
    assert {(e["row"], e["column"]) for e in result["errors"]} == {(3, "性别(XBM)*"), (5, "性别(XBM)*")}
    assert all(e["reason_zh"] and e["reason_en"] and e["value"] == "7" for e in result["errors"])
    assert s.query(Teacher).count() == 2  # nothing of the bad rows was written
    t = s.query(Teacher).filter(Teacher.name == "教师401").one()
    assert t.draft["JBXX"]["MZM"] == "01"  # "汉族" became its code
    again = importexport.import_file(ctx(s, province.actor("school1_info"), province=P), school, "JBXX", data, "csv")
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 2, 2)
    assert s.query(Teacher).count() == 2


def test_multi_record_group_import_by_teacher_number_via_xlsx(province):
    s, school = province.session, province.units["2144000001"].id
    importexport.import_file(
        ctx(s, province.actor("school1_info"), province=P), school, "JBXX", _csv(_jbxx_rows(province, ["411"])), "csv"
    )
    t = s.query(Teacher).one()
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(importexport.header_row(province.catalogue.group("GNPX")))
    ws.append([t.teacher_number, 2023, "2", "省级培训A", None, "1", 24, 3])
    ws.append([t.teacher_number, 2024, "国家级培训", "国培计划", "某大学", "网络研修", 50, None])
    ws.append(["4400000000999", 2024, "2", "x", None, "1", 1, None])  # unknown teacher number
    buf = io.BytesIO()
    wb.save(buf)
    result = importexport.import_file(
        ctx(s, province.actor("school1_info"), province=P), school, "GNPX", buf.getvalue(), "xlsx"
    )
    assert (result["updated"], result["failed"]) == (1, 1)
    assert result["errors"][0]["row"] == 4 and result["errors"][0]["column"] == "教师编号(JSBH)"
    assert [r["PXLBM"] for r in t.draft["GNPX"]] == ["2", "1"] and t.draft["GNPX"][1]["PXFSM"] == "2"


def test_bad_headers_refuse_the_whole_file(province):
    data = _csv([["姓名", "身份证件号(SFZJH)"], ["x", "y"]])
    with pytest.raises(ValidationError) as exc:
        importexport.import_file(
            province.ctx("school1_info", province=P), province.units["2144000001"].id, "JBXX", data, "csv"
        )
    assert {e["column"] for e in exc.value.details["errors"]} >= {"姓名", "SFZJLXM"}


def test_import_respects_scope_and_fill_rights(province):
    from common.errors import NotFoundError

    with pytest.raises(NotFoundError):
        importexport.import_file(
            province.ctx("school2_info", province=P),
            province.units["2144000001"].id,
            "JBXX",
            _csv(_jbxx_rows(province, ["421"])),
            "csv",
        )


def test_export_is_audited_and_needs_a_reason(province):
    s = province.session
    importexport.import_file(
        ctx(s, province.actor("school1_info"), province=P),
        province.units["2144000001"].id,
        "JBXX",
        _csv(_jbxx_rows(province, ["431", "432"])),
        "csv",
    )
    for t in s.query(Teacher).all():
        files.submit(ctx(s, province.actor("school1_info")), t.id)
    review.bulk_approve(ctx(s, province.actor("school1_rev"), province=P))
    review.bulk_approve(ctx(s, province.actor("tianhe_info"), province=P))
    with pytest.raises(ValidationError):
        importexport.export_unit(ctx(s, province.actor("tianhe_query")), province.units["440106"].id, "")
    data = importexport.export_unit(
        ctx(s, province.actor("tianhe_query")), province.units["440106"].id, "年度统计核对", groups=["JBXX"], fmt="csv"
    )
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "教师编号(JSBH)" and len(rows) == 3
    (event,) = trail.query(ctx(s, province.actor("tianhe_admin")), action="files.export")
    assert event.reason == "年度统计核对" and event.details["teachers"] == 2


def test_a_thousand_rows(province):
    seqs = [f"{n:03d}" for n in range(1000)]
    rows = _jbxx_rows(province, seqs)
    for i, r in enumerate(rows[1:]):  # distinct birth dates keep the ID numbers unique
        r[importexport.header_row(province.catalogue.group("JBXX")).index("身份证件号(SFZJH)*")] = resident_id(
            "440106", f"1988{(i % 12) + 1:02d}{(i % 28) + 1:02d}", f"{i % 1000:03d}"
        )
        r[importexport.header_row(province.catalogue.group("JBXX")).index("出生日期(CSRQ)*")] = (
            f"1988-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}"
        )
        r[importexport.header_row(province.catalogue.group("JBXX")).index("性别(XBM)*")] = (
            "1" if (i % 1000) % 2 else "2"
        )
    seen = []
    result = importexport.import_file(
        province.ctx("school1_info"),
        province.units["2144000001"].id,
        "JBXX",
        _csv(rows),
        "csv",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result["created"] == 1000, result["errors"][:3]
    assert seen[-1] == (1000, 1000)
