"""Batch import/export on SQLite and PostgreSQL: templates, per-row errors, idempotence, audited export."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from common.catalogue import load_catalogue
from common.errors import ValidationError
from provincial_node.audit_trail import trail
from provincial_node.teacher_files import exporting, files, importexport, review, sheets
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
    header = sheets.header_row(group)
    codes = [f.code for f in sheets.columns(group)]
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
    xlsx = sheets.template(province.ctx(None), "JBXX", "xlsx")
    wb = load_workbook(io.BytesIO(xlsx))
    headers = [c.value for c in wb.worksheets[0][1]]
    assert "姓名(XM)*" in headers and "民族(MZM)" in headers
    assert not any("RYZTM" in h for h in headers)  # workflow fields are not imported
    codes = {(r[1], r[2]) for r in wb["代码表"].iter_rows(min_row=2, values_only=True)}
    assert ("MZ", "01") in codes and ("XB", "2") in codes
    ws = wb.worksheets[0]
    mz = headers.index("民族(MZM)") + 1
    letter = ws.cell(2, mz).column_letter
    (dv,) = [d for d in ws.data_validations.dataValidation if str(d.sqref) == f"{letter}2:{letter}5000"]
    options = [v for r in wb["选项"].iter_rows(values_only=True) for v in r if v]
    assert dv.type == "list" and "01 汉族" in options and wb["选项"].sheet_state == "hidden"
    text = sheets.template(province.ctx(None), "GNPX", "csv").decode("utf-8-sig")
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
    ws.append(sheets.header_row(province.catalogue.group("GNPX")))
    ws.append([t.teacher_number, 2023, "2", "省级培训A", None, "1", 24, 3])
    ws.append([t.teacher_number, 2024, "国家级培训", "国培计划", "某大学", "网络研修", 50, None])
    ws.append(["4400000000999", 2024, "2", "x", None, "1", 1, None])  # unknown teacher number
    buf = io.BytesIO()
    wb.save(buf)
    result = importexport.import_file(
        ctx(s, province.actor("school1_info"), province=P), school, "GNPX", buf.getvalue(), "xlsx"
    )
    assert (result["created"], result["failed"]) == (2, 1)  # one new record per row
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
        exporting.export_unit(ctx(s, province.actor("tianhe_query")), province.units["440106"].id, "")
    data = exporting.export_unit(
        ctx(s, province.actor("tianhe_query")), province.units["440106"].id, "年度统计核对", groups=["JBXX"], fmt="csv"
    )
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["教师编号(JSBH)", "学校标识码(XXBSM)", "学校名称(XXMC)"] and len(rows) == 3
    (event,) = trail.query(ctx(s, province.actor("tianhe_admin")), action="files.export")
    assert event.reason == "年度统计核对" and event.details["teachers"] == 2


def test_a_thousand_rows(province):
    seqs = [f"{n:03d}" for n in range(1000)]
    rows = _jbxx_rows(province, seqs)
    for i, r in enumerate(rows[1:]):  # distinct birth dates keep the ID numbers unique
        r[sheets.header_row(province.catalogue.group("JBXX")).index("身份证件号(SFZJH)*")] = resident_id(
            "440106", f"1988{(i % 12) + 1:02d}{(i % 28) + 1:02d}", f"{i % 1000:03d}"
        )
        r[sheets.header_row(province.catalogue.group("JBXX")).index("出生日期(CSRQ)*")] = (
            f"1988-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}"
        )
        r[sheets.header_row(province.catalogue.group("JBXX")).index("性别(XBM)*")] = "1" if (i % 1000) % 2 else "2"
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


# ----------------------------------------------------------------- imports the way schools work (issue 15)


def _effective_teacher(province, seq="501"):
    """A teacher of school 1 whose file is effective, with 年度考核 2023 and 国内培训 2023."""
    s, school = province.session, province.units["2144000001"].id
    clerk = province.ctx("school1_info")
    importexport.import_file(clerk, school, "JBXX", _csv(_jbxx_rows(province, [seq])), "csv")
    t = s.query(Teacher).filter(Teacher.name == f"教师{seq}").one()
    files.update_group(clerk, t.id, "NDKH", [{"KHND": 2023, "KHJGM": "1"}])
    files.update_group(clerk, t.id, "GNPX", [{**GOOD_RECORDS["GNPX"], "PXND": 2023}])
    files.submit(clerk, t.id)
    review.review(province.ctx("school1_rev"), t.id, "approve")
    review.review(province.ctx("tianhe_info"), t.id, "approve")
    assert t.status == "effective"
    return t


def _group_csv(province, group, rows):
    return _csv([sheets.header_row(province.catalogue.group(group)), *rows])


def test_this_years_appraisal_is_added_to_an_effective_file_without_a_change_request(province):
    t = _effective_teacher(province)
    data = _group_csv(province, "NDKH", [[t.teacher_number, "2024", "1", "天河区第一小学"]])
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", data, "csv"
    )
    assert (result["created"], result["failed"]) == (1, 0), result["errors"]
    assert [r["KHND"] for r in t.draft["NDKH"]] == [2023, 2024]  # merged by 考核年度, last year's kept
    assert t.data["NDKH"] == [{"KHND": 2023, "KHJGM": "1"}]  # new information goes through review
    assert t.status == "draft"
    again = importexport.import_file(province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", data, "csv")
    assert (again["unchanged"], again["created"]) == (1, 0)


def test_changing_an_effective_record_by_import_needs_a_change_request_at_its_row(province):
    t = _effective_teacher(province)
    data = _group_csv(
        province,
        "NDKH",
        [[t.teacher_number, "2024", "1", ""], [t.teacher_number, "2023", "2", ""]],  # row 3 changes 2023's result
    )
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", data, "csv"
    )
    assert (result["created"], result["failed"]) == (1, 1)
    (error,) = result["errors"]
    assert error["row"] == 3 and error["column"] == "考核结果(KHJGM)*"
    assert "变更申请" in error["reason_zh"] and "change request" in error["reason_en"]
    assert [r["KHND"] for r in t.draft["NDKH"]] == [2023, 2024] and t.draft["NDKH"][0]["KHJGM"] == "1"


def test_training_records_merge_by_year_and_programme(province):
    t = _effective_teacher(province)
    head = [t.teacher_number, "2023", "2", GOOD_RECORDS["GNPX"]["PXXMMC"], "", "1", "72", "9"]  # the same record
    new = [t.teacher_number, "2023", "2", "校本研修", "", "1", "20", ""]  # same year, another programme
    data = _group_csv(province, "GNPX", [head, new])
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "GNPX", data, "csv"
    )
    assert (result["unchanged"], result["created"], result["failed"]) == (1, 1, 0), result["errors"]
    assert [r["PXXMMC"] for r in t.draft["GNPX"]] == [GOOD_RECORDS["GNPX"]["PXXMMC"], "校本研修"]


def test_a_bad_record_is_reported_at_its_own_row(province):
    t = _effective_teacher(province)
    rows = [
        [t.teacher_number, "2020", "1", ""],
        [t.teacher_number, "2021", "1", ""],
        [t.teacher_number, "2022", "9", ""],  # row 4: no such 考核结果
    ]
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", _group_csv(province, "NDKH", rows), "csv"
    )
    assert (result["created"], result["failed"]) == (2, 1)
    assert [(e["row"], e["column"], e["value"]) for e in result["errors"]] == [(4, "考核结果(KHJGM)*", "9")]
    assert [r["KHND"] for r in t.draft["NDKH"]] == [2023, 2020, 2021]


def test_the_same_record_twice_in_one_file_is_an_error_of_the_later_row(province):
    t = _effective_teacher(province)
    rows = [[t.teacher_number, "2024", "1", ""], [t.teacher_number, "2024", "2", ""]]
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", _group_csv(province, "NDKH", rows), "csv"
    )
    assert (result["created"], result["failed"]) == (1, 1)
    assert result["errors"][0]["row"] == 3 and "第 2 行" in result["errors"][0]["reason_zh"]
    assert [(r["KHND"], r["KHJGM"]) for r in t.draft["NDKH"]] == [(2023, "1"), (2024, "1")]


def test_codes_as_excel_numbers_and_as_labels(province):
    """``1`` for ``01`` (what Excel does to a numeric cell, in xlsx and in the CSV it saves) and the label."""
    from openpyxl import Workbook

    s, school = province.session, province.units["2144000001"].id
    rows = _jbxx_rows(province, ["511", "512"])
    header = rows[0]
    rows[1][header.index("民族(MZM)")] = "1"  # CSV text, leading zero lost
    rows[1][header.index("政治面貌(ZZMMM)")] = "群众"  # a label for a multi-code field
    rows[2][header.index("民族(MZM)")] = "02 蒙古族"
    result = importexport.import_file(province.ctx("school1_info"), school, "JBXX", _csv(rows), "csv")
    assert (result["created"], result["failed"]) == (2, 0), result["errors"]
    t511, t512 = (s.query(Teacher).filter(Teacher.name == f"教师{n}").one() for n in ("511", "512"))
    assert (t511.draft["JBXX"]["MZM"], t511.draft["JBXX"]["ZZMMM"]) == ("01", ["13"])
    assert t512.draft["JBXX"]["MZM"] == "02"
    wb = Workbook()
    ws = wb.active
    ws.append(sheets.header_row(province.catalogue.group("NDKH")))
    files.update_group(province.ctx("school1_info"), t511.id, "NDKH", [])
    ws.append([t511.teacher_number, 2024, 1, None])  # numeric cells: year and 考核结果 1
    buf = io.BytesIO()
    wb.save(buf)
    result = importexport.import_file(province.ctx("school1_info"), school, "NDKH", buf.getvalue(), "xlsx")
    assert (result["created"], result["failed"]) == (1, 0), result["errors"]
    assert t511.draft["NDKH"] == [{"KHND": 2024, "KHJGM": "1"}]


def test_code_of_accepts_only_unambiguous_forms():
    from common.catalogue import Code, CodeTable

    table = CodeTable(
        "T", "测试", "test", "", True, {c: Code(c, lab) for c, lab in (("01", "甲"), ("1", "乙"), ("002", "丙"))}
    )
    assert sheets.code_of(table, "1") == "1"  # exact wins
    assert sheets.code_of(table, "2") == "002"  # the one code it can mean
    assert sheets.code_of(table, "丙") == "002" and sheets.code_of(table, "002 丙") == "002"
    assert sheets.code_of(table, "001") == "001"  # matches 01 and 1: left for the validator to refuse
    mz = load_catalogue().table("MZ")
    assert sheets.code_of(mz, "1") == "01" and sheets.code_of(mz, "汉 族") == "01"


def test_a_gbk_csv_from_excel_is_read(province):
    rows = _jbxx_rows(province, ["521"])
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    data = buf.getvalue().encode("gbk")  # what Excel on Chinese Windows saves as "CSV (逗号分隔)"
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "JBXX", data, "csv"
    )
    assert (result["created"], result["encoding"]) == (1, "gb18030"), result["errors"]
    assert province.session.query(Teacher).filter(Teacher.name == "教师521").count() == 1


def test_a_csv_in_an_unknown_encoding_says_how_to_save_it(province):
    with pytest.raises(ValidationError) as exc:
        importexport.import_file(
            province.ctx("school1_info"), province.units["2144000001"].id, "JBXX", b"\xff\x00\xff\x80abc", "csv"
        )
    (err,) = exc.value.errors
    assert "CSV UTF-8" in err.reason_zh and "Save As" in err.reason_en


def test_export_has_the_school_and_codes_with_labels_and_imports_back_unchanged(province):
    s = province.session
    t = _effective_teacher(province)
    data = exporting.export_unit(province.ctx("tianhe_info"), province.units["440106"].id, "核对", groups=["JBXX"])
    wb = load_workbook(io.BytesIO(data))
    rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    header, row = rows[0], rows[1]
    assert header[:3] == ["教师编号(JSBH)", "学校标识码(XXBSM)", "学校名称(XXMC)"]
    assert row[:3] == [t.teacher_number, "2144000001", "天河区第一小学"]
    assert row[header.index("民族(MZM)")] == "01 汉族" and row[header.index("性别(XBM)")] == "1 男"
    # a school exports its file, and imports it back: nothing changes
    mine = exporting.export_unit(province.ctx("school1_info"), province.units["2144000001"].id, "核对", "csv", ["JBXX"])
    before = dict(t.draft)
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "JBXX", mine, "csv"
    )
    assert (result["unchanged"], result["failed"]) == (1, 0), result["errors"]
    assert t.draft == before and s.query(Teacher).count() == 1
    # NDKH exported with 考核结果 as "1 优秀": imports back unchanged too
    nd = exporting.export_unit(province.ctx("school1_info"), province.units["2144000001"].id, "核对", "csv", ["NDKH"])
    result = importexport.import_file(province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", nd, "csv")
    assert (result["unchanged"], result["failed"]) == (1, 0), result["errors"]


def test_a_row_for_another_school_is_refused(province):
    t = _effective_teacher(province)
    head = [*sheets.header_row(province.catalogue.group("NDKH")), "学校标识码(XXBSM)"]
    data = _csv([head, [t.teacher_number, "2024", "1", "", "2144000002"]])
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "NDKH", data, "csv"
    )
    assert result["failed"] == 1 and result["errors"][0]["column"] == "学校标识码(XXBSM)"


# ------------------------------------------------------------------------------ input hygiene (issue 16)


def test_the_same_id_number_twice_in_one_file_is_an_error_of_the_later_row(province):
    rows = _jbxx_rows(province, ["531", "532"])
    dup = list(rows[1])
    dup[rows[0].index("姓名(XM)*")] = "另一个人"
    rows.append(dup)  # row 4 repeats row 2's ID number
    result = importexport.import_file(
        province.ctx("school1_info"), province.units["2144000001"].id, "JBXX", _csv(rows), "csv"
    )
    assert (result["created"], result["failed"]) == (2, 1)
    (err,) = result["errors"]
    assert (err["row"], err["column"]) == (4, "身份证件号(SFZJH)*") and "第 2 行" in err["reason_zh"]
    assert province.session.query(Teacher).filter(Teacher.name == "另一个人").count() == 0
    assert province.session.query(Teacher).filter(Teacher.name == "教师531").one().draft["JBXX"]["XM"] == "教师531"


def test_imports_are_bounded_in_bytes_and_rows(province):
    import dataclasses

    from common.errors import TmisError

    rows = _jbxx_rows(province, ["541", "542", "543"])
    small = dataclasses.replace(province.ctx("school1_info").settings, import_max_rows=2, import_max_bytes=4096)
    clerk = dataclasses.replace(province.ctx("school1_info"), settings=small)
    with pytest.raises(ValidationError) as exc:
        importexport.import_file(clerk, province.units["2144000001"].id, "JBXX", _csv(rows), "csv")
    assert "超过 2 行" in exc.value.errors[0].reason_zh
    with pytest.raises(TmisError) as exc:
        importexport.import_file(clerk, province.units["2144000001"].id, "JBXX", b"x" * 5000, "csv")
    assert (exc.value.code, exc.value.http_status) == ("payload_too_large", 413)
    bomb = io.BytesIO()  # an xlsx (zip) that would unpack far beyond the limit
    import zipfile

    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", "0" * 200_000)
    with pytest.raises(TmisError) as exc:
        importexport.import_file(clerk, province.units["2144000001"].id, "JBXX", bomb.getvalue(), "xlsx")
    assert exc.value.code == "payload_too_large"
    assert province.session.query(Teacher).count() == 0


def test_an_export_survives_a_control_character_stored_before_the_rule(province):
    """A control character in one effective name used to make every xlsx export above that school fail."""
    t = _effective_teacher(province)
    t.data = {**t.data, "JBXX": {**t.data["JBXX"], "XM": "李\x07明"}}  # as stored by an older version
    province.session.flush()
    data = exporting.export_unit(province.ctx("city_info"), province.units["440100"].id, "统计", groups=["JBXX"])
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    header = [c.value for c in ws[1]]
    assert [r[header.index("姓名(XM)")] for r in ws.iter_rows(min_row=2, values_only=True)] == ["李\ufffd明"]
    with pytest.raises(ValidationError) as exc:  # and no new one gets in
        files.update_group(province.ctx("school1_info"), t.id, "LXFS", {"TXDZ": "广州\x1b市"})
    assert exc.value.errors[0].field == "TXDZ" and "U+001B" in exc.value.errors[0].reason_zh
