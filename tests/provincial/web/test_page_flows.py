"""The core flows through the pages as a browser without JavaScript sends them (the Flask test client, the
forms' own field names, the CSRF token of the page): errors come back next to the field they concern, in
Chinese, with nothing written; good input does what the API would. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from common.db import session_scope
from provincial_node.context import runtime
from provincial_node.tasks.runner import run_pending
from provincial_node.teacher_files.models import ChangeRequest, Teacher
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.web.conftest import basic, csrf_of, post

JBXX_WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _teacher(site, teacher_id: int) -> Teacher:
    with session_scope(runtime(site.app).session_factory) as db:
        t = db.get(Teacher, teacher_id)
        db.expunge(t)
        return t


def _form_of(record: dict, prefix: str = "f.") -> dict:
    out = {}
    for k, v in record.items():
        out[f"{prefix}{k}"] = v if isinstance(v, list) else str(v)
    return out


def field_error(html: str, name: str) -> str:
    m = re.search(rf'data-field-error="{re.escape(name)}">([^<]*)<', html)
    return m.group(1) if m else ""


def register(site, client, seq: str, **over) -> tuple[int, str]:
    values = {k: basic(seq)[k] for k in ("XM", "SFZJLXM", "SFZJH")} | over
    page = client.get("/teachers/new")
    r = client.post(
        "/teachers/new",
        data={**values, "school_id": str(site.ids["2144000001"]), "csrf_token": csrf_of(page.text)},
    )
    return r.status_code, r.headers.get("Location", "") or r.text


def test_register_with_a_bad_id_number_says_so_next_to_the_field_and_writes_nothing(site):
    c = site.client("school_info")
    with session_scope(runtime(site.app).session_factory) as db:
        before = db.query(Teacher).count()
    status, html = register(site, c, "611", SFZJH="440106198803151230")  # wrong check character
    assert status == 422
    assert "校验" in field_error(html, "SFZJH") or "证件" in field_error(html, "SFZJH"), html[:2000]
    with session_scope(runtime(site.app).session_factory) as db:
        assert db.query(Teacher).count() == before


def test_register_a_known_identity_points_at_the_existing_file(site):
    c = site.client("school_info")
    status, html = register(site, c, "503")  # the effective file's identity
    assert status == 422 and "已在本省建档" in field_error(html, "SFZJH")


def test_fill_a_group_with_a_bad_value_keeps_the_input_and_the_old_draft(site):
    c = site.client("school_info")
    status, location = register(site, c, "612")
    assert status == 302
    tid = int(re.search(r"/teachers/(\d+)/groups/JBXX", location).group(1))
    record = {k: v for k, v in basic("612").items() if k not in JBXX_WORKFLOW}
    bad = _form_of({**record, "CSRQ": "1988-02-30"})
    r = post(c, f"/teachers/{tid}/groups/JBXX", bad, token_from=f"/teachers/{tid}/groups/JBXX")
    assert r.status_code == 422
    assert field_error(r.text, "f.CSRQ"), r.text[:3000]
    assert 'value="1988-02-30"' in r.text  # what the user typed is still there to correct
    assert "CSRQ" not in (_teacher(site, tid).draft.get("JBXX") or {})
    r = post(c, f"/teachers/{tid}/groups/JBXX", _form_of(record), token_from=f"/teachers/{tid}/groups/JBXX")
    assert r.status_code == 302, r.text[:2000]
    assert _teacher(site, tid).draft["JBXX"]["CSRQ"] == "1988-03-15"


def test_a_multi_record_group_adds_a_row_and_removes_one_without_javascript(site):
    c = site.client("school_info")
    tid = site.teachers["draft"]
    row = GOOD_RECORDS["NDKH"]
    form = {f"r.0.{k}": str(v) for k, v in row.items()} | {"r.0.__keep": "1"}
    r = post(c, f"/teachers/{tid}/groups/NDKH", form, token_from=f"/teachers/{tid}/groups/NDKH")
    assert r.status_code == 302, r.text[:2000]
    second = {f"r.1.{k}": str(v) for k, v in {**row, "KHND": 2023}.items()} | {"r.1.__keep": "1"}
    r = post(c, f"/teachers/{tid}/groups/NDKH", {**form, **second}, token_from=f"/teachers/{tid}/groups/NDKH")
    assert r.status_code == 302
    assert [x["KHND"] for x in _teacher(site, tid).draft["NDKH"]] == [2024, 2023]
    # a bad value in the second row: the error sits under that row's field, nothing is saved
    bad = {**form, **second, "r.1.KHJGM": "9"}
    r = post(c, f"/teachers/{tid}/groups/NDKH", bad, token_from=f"/teachers/{tid}/groups/NDKH")
    assert r.status_code == 422 and field_error(r.text, "r.1.KHJGM") and not field_error(r.text, "r.0.KHJGM")
    # 删除本条 is a checkbox: the first row goes, the second stays
    r = post(c, f"/teachers/{tid}/groups/NDKH", {**form, **second, "r.0.__remove": "1"}, token_from=f"/teachers/{tid}")
    assert r.status_code == 302
    assert [x["KHND"] for x in _teacher(site, tid).draft["NDKH"]] == [2023]


def test_submitting_an_incomplete_file_lists_what_is_missing(site):
    c = site.client("school_info")
    status, location = register(site, c, "613")
    tid = int(re.search(r"/teachers/(\d+)/", location).group(1))
    r = post(c, f"/teachers/{tid}/submit", token_from=f"/teachers/{tid}")
    assert r.status_code == 422 and "出生日期" in r.text and _teacher(site, tid).status == "draft"


def test_review_reject_needs_a_reason_and_then_returns_the_file(site):
    reviewer = site.client("school_rev")  # the school's review step: not the account that entered it
    tid = site.teachers["submitted"]
    r = post(reviewer, f"/review/{tid}", {"decision": "reject", "reason": ""}, token_from=f"/review/{tid}")
    assert r.status_code == 302 and _teacher(site, tid).status == "submitted"
    page = reviewer.get(r.headers["Location"])
    assert "原因" in page.text  # the flash says a rejection needs a reason
    r = post(reviewer, f"/review/{tid}", {"decision": "reject", "reason": "出生日期有误"}, token_from=f"/review/{tid}")
    assert r.status_code == 302 and _teacher(site, tid).status == "rejected"
    # the school sees it among its rejected files, with the reason on the file page
    clerk = site.client("school_info")
    assert "出生日期有误" in clerk.get(f"/teachers/{tid}").text


def test_a_change_request_is_made_by_the_school_and_decided_by_the_county(site):
    school, county = site.client("school_info"), site.client("county_info")
    tid = site.teachers["effective"]
    form = {"group": "LXFS", "reason": "号码变更"}
    r = post(school, f"/teachers/{tid}/changes/new", form, token_from=f"/teachers/{tid}/changes/new?group=LXFS")
    assert r.status_code in (404, 422)  # the effective file has no LXFS yet: nothing to change there
    form = {"group": "JBXX", "c.0.XM": "李小明", "reason": ""}
    r = post(school, f"/teachers/{tid}/changes/new", form, token_from=f"/teachers/{tid}/changes/new")
    assert r.status_code == 422 and field_error(r.text, "reason")
    form["reason"] = "本人更名，附户籍证明"
    r = post(school, f"/teachers/{tid}/changes/new", form, token_from=f"/teachers/{tid}/changes/new")
    assert r.status_code == 302
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    detail = county.get(f"/changes/{rid}").text
    assert "李小明" in detail and "教师503" in detail  # old and new side by side
    r = post(county, f"/changes/{rid}/decision", {"decision": "approve"}, token_from=f"/changes/{rid}")
    assert r.status_code == 302
    with session_scope(runtime(site.app).session_factory) as db:
        assert db.get(ChangeRequest, rid).status == "approved"
        assert db.get(Teacher, tid).data["JBXX"]["XM"] == "李小明"
    after = county.get(f"/changes/{rid}").text  # decided: still reads old → new
    assert re.search(r'class="diff-old">教师503<.*class="diff-new">李小明<', after, re.S)


def test_creating_an_account_with_a_weak_password_says_which_field(site):
    admin = site.client("school_admin")
    form = {
        "username": "clerk9",
        "real_name": "新信息员",
        "unit_id": str(site.ids["2144000001"]),
        "role": "query",
        "id_number": resident_id("440106", "19900101", "123"),
        "phone": "13800138000",
    }
    r = post(admin, "/accounts/new", {**form, "password": "Passw0rd"}, token_from="/accounts/new")
    assert r.status_code == 422
    assert "长度" in field_error(r.text, "password") and "常见" in field_error(r.text, "password")  # every reason
    r = post(admin, "/accounts/new", {**form, "id_number": "440106199001011230"}, token_from="/accounts/new")
    assert r.status_code == 422 and field_error(r.text, "id_number")  # real-name data is checked
    r = post(admin, "/accounts/new", {**form, "password": "Clerk-pass-2026x"}, token_from="/accounts/new")
    assert r.status_code == 302
    assert "clerk9" in admin.get("/accounts").text


def test_an_upload_with_one_bad_row_reports_that_row_and_keeps_the_good_ones(site):
    """The upload becomes a background task; its page shows the progress, then the counts and the bad row (on
    screen and in the xlsx report, which only the uploader can fetch)."""
    c = site.client("school_info")
    tpl = c.get("/templates/LXFS.csv")
    assert tpl.status_code == 200
    number = _teacher(site, site.teachers["draft"]).teacher_number
    body = tpl.data + f"{number},广州市天河区,020-1234567,13800138000,a@b.cn,\n".encode()
    body += b"4400000000999,x,,,,\n"  # no such teacher
    page = c.get("/imports-exports")
    r = c.post(
        "/imports",
        data={
            "group": "LXFS",
            "school_id": str(site.ids["2144000001"]),
            "file": (io.BytesIO(body), "lxfs.csv"),
            "csrf_token": csrf_of(page.text),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 302, r.text[:2000]
    task_page = r.headers["Location"]
    queued = c.get(task_page)
    assert "排队中" in queued.text and 'http-equiv="refresh"' in queued.text  # follows itself without JavaScript
    assert c.get(task_page + "/status").json == {
        "state": "queued", "state_label": "排队中", "done": 0, "total": None, "finished": False,
    }  # fmt: skip
    assert run_pending(runtime(site.app)) != []
    done = c.get(task_page)
    assert "http-equiv" not in done.text and "失败 1" in done.text and "新建 0，更新 1" in done.text
    assert re.search(r"<tr><td>3</td><td>教师编号\(JSBH\)</td><td>4400000000999</td><td>[^<]+</td></tr>", done.text)
    report = c.get(task_page + "/report.xlsx")
    assert report.status_code == 200
    wb = load_workbook(io.BytesIO(report.data))
    assert any("4400000000999" in str(cell.value) for row in wb.active.iter_rows() for cell in row)
    assert site.client("school2_info").get(task_page).status_code == 404  # another school: not even the page
    assert site.client("county_info").get(task_page + "/report.xlsx").status_code == 404  # the uploader's only
    assert _teacher(site, site.teachers["draft"]).draft["LXFS"]["SJ"] == "13800138000"
    assert task_page.rsplit("/", 1)[1] in c.get("/imports-exports").text  # among 最近的导入


def test_an_upload_that_is_not_a_table_fails_with_the_reason(site):
    c = site.client("school_info")
    page = c.get("/imports-exports")
    r = c.post(
        "/imports",
        data={
            "group": "LXFS",
            "school_id": str(site.ids["2144000001"]),
            "file": (io.BytesIO(b"\x00\x01 not a spreadsheet"), "lxfs.xlsx"),
            "csrf_token": csrf_of(page.text),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    run_pending(runtime(site.app))
    done = c.get(r.headers["Location"])
    assert "导入未能进行" in done.text and "失败" in done.text


def test_an_upload_without_a_file_or_group_says_which(site):
    c = site.client("school_info")
    r = post(c, "/imports", {"school_id": str(site.ids["2144000001"])}, token_from="/imports-exports")
    assert r.status_code == 422 and field_error(r.text, "file") and field_error(r.text, "group")


def test_an_export_needs_its_purpose(site):
    c = site.client("county_info")
    form = {"unit_id": str(site.ids["440106"]), "format": "csv", "groups": "JBXX", "reason": ""}
    r = post(c, "/exports", form, token_from="/imports-exports")
    assert r.status_code == 302 and "用途" in c.get(r.headers["Location"]).text
    r = post(c, "/exports", {**form, "reason": "年度队伍统计核对"}, token_from="/imports-exports")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    # the unit's Chinese name is in the file name, sent the way a WSGI server can (Latin-1 header, RFC 5987)
    disposition = r.headers["Content-Disposition"]
    disposition.encode("latin-1")
    name = disposition.split("filename*=UTF-8''")[1]
    assert unquote(name).endswith(".csv") and any("\u4e00" <= ch <= "\u9fff" for ch in unquote(name))


FORMS = [
    "/teachers/new",
    "/teachers/{draft}/groups/JBXX",
    "/teachers/{draft}/submit",
    "/teachers/bulk-submit",
    "/review/{submitted}",
    "/review/bulk",
    "/review/bulk/approve",
    "/imports",
    "/exports",
    "/transfers/new",
    "/accounts/new",
    "/account/password",
    "/logout",
]


@pytest.mark.parametrize("form", FORMS)
def test_every_form_refuses_a_post_without_its_csrf_token(site, form):
    c = site.client("school_info")
    path = form.format(draft=site.teachers["draft"], submitted=site.teachers["submitted"])
    r = c.post(path, data={"x": "1"})
    assert r.status_code == 400 and "页面已过期" in r.text
    with session_scope(runtime(site.app).session_factory) as db:  # and did nothing
        assert db.scalar(select(Teacher.status).where(Teacher.id == site.teachers["draft"])) == "draft"


def test_the_school_admin_opens_a_teacher_account_matching_the_file(site):
    admin = site.client("school_admin")
    t = _teacher(site, site.teachers["submitted"])
    form = {
        "teacher_number": t.teacher_number,
        "name": t.name,
        "gender": "1" if basic("502")["XBM"] == "2" else "2",  # wrong: the ID number says otherwise
        "birth_date": "1988-03-15",
        "id_number": t.doc_number,
        "initial_password": "Teacher-pass-2026",
    }
    page = "/teacher-accounts/new"
    r = post(admin, page, form, token_from=page)
    assert r.status_code == 422 and field_error(r.text, "gender")
    r = post(admin, page, {**form, "teacher_number": "4400000009999"}, token_from=page)
    assert r.status_code == 422 and "本校没有" in field_error(r.text, "teacher_number")
    r = post(admin, page, {**form, "gender": basic("502")["XBM"]}, token_from=page)
    assert r.status_code == 302
    assert t.teacher_number in admin.get("/accounts").text  # the login name is the teacher number
