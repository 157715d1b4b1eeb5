"""安全审计 pages (操作日志 /audit-log, 登录日志 /login-log) through the Flask test client, on SQLite and PostgreSQL:
each person sees their own unit's subtree only (never a sibling's or a parent's entries), the filters narrow the
list, a bad filter value answers 422 with the reason next to its field (never a 500), "更早" pages back without
repeating an entry, ID numbers are masked, the reads a read-volume alert concerns are highlighted, the menu shows
the section to whoever may use it, and the JSON API takes the same filters. Who may open each page at all is in
test_page_access.py's table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import select

from common.db import session_scope
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account, Unit
from provincial_node.audit_trail import trail
from provincial_node.context import Settings, runtime
from tests.factories import resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD
from tests.provincial.web.conftest import csrf_of

T = dt.datetime(2031, 3, 2, 1, 0, tzinfo=dt.UTC)  # 2031-03-02 09:00 北京时间, after everything the fixture records
CODES = ("440000", "440100", "440106", "440105", "2144000001", "2144000002", "3444000003")


def _record(site, who, code, action="node.init", *, target_id, at=T, target_type="node", reason=None, **details):
    with session_scope(runtime(site.app).session_factory) as db:
        actor = actor_for(db, db.scalar(select(Account).where(Account.username == who))) if who else None
        path = db.get(Unit, site.ids[code]).path
        trail.record(ctx(db, actor, now=at), action, target_type, target_id, path, reason, **details)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-event="(\d+)"', html)


def _field_error(html: str, name: str) -> str:
    m = re.search(rf'data-field-error="{re.escape(name)}">([^<]*)<', html)
    return unescape(m.group(1)) if m else ""


def test_each_person_sees_the_audit_trail_of_their_subtree_only(site):
    for code in CODES:
        _record(site, None, code, target_id=f"M-{code}")
    want = {
        "province_admin": set(CODES),
        "city_info": set(CODES) - {"440000"},
        "county_admin": {"440106", "2144000001", "2144000002"},
        "county_info": {"440106", "2144000001", "2144000002"},
        "haizhu_info": {"440105", "3444000003"},
        "school_admin": {"2144000001"},
        "school_info": {"2144000001"},
        "school2_info": {"2144000002"},
    }
    for who, codes in want.items():
        r = site.client(who).get("/audit-log?action=node.init&since=2031-03-02&until=2031-03-02")
        assert r.status_code == 200, (who, r.status_code)
        shown = set(re.findall(r"M-(\d+)", r.text))
        assert shown == codes, f"{who}: {sorted(shown)}"
        assert "节点初始化" in r.text  # the action's Chinese name


def test_the_audit_log_filters_narrow_the_list(site):
    number = site.teacher_login  # a teacher account's username is its teacher number
    at = T + dt.timedelta(days=10)
    _record(site, "school_info", "2144000001", "review.reject", at=at, target_type="teacher", target_id=number)
    _record(site, "school_rev", "2144000001", "account.unlock", at=at + dt.timedelta(hours=1), target_id="F-rev")
    _record(site, "county_info", "440106", "account.unlock", at=at + dt.timedelta(days=1), target_id="F-county")
    _record(site, "county_info", "2144000002", "notice.publish", at=at + dt.timedelta(days=1), target_id="F-s2")
    c = site.client("county_admin")
    day = "2031-03-12"  # the Beijing day of ``at``

    def shown(query: str) -> set[str]:
        if "since=" not in query:
            query += f"&since={day}"
        if "until=" not in query:
            query += "&until=2031-03-13"
        r = c.get(f"/audit-log?{query}")
        assert r.status_code == 200, r.text[:2000]
        return set(re.findall(r"F-[a-z0-9]+", r.text)) | ({"number"} if number in r.text else set())

    assert shown("") == {"number", "F-rev", "F-county", "F-s2"}
    assert shown(f"until={day}") == {"number", "F-rev"}  # the end date is included, the next day is not
    assert shown("since=2031-03-12+10:00&until=2031-03-12+10:00") == {"F-rev"}  # 10:00 北京时间, to the minute
    assert shown("username=county_info") == {"F-county", "F-s2"}
    assert shown("action=account.unlock") == {"F-rev", "F-county"}
    assert shown(f"unit_id={site.ids['2144000002']}") == {"F-s2"}
    assert shown(f"teacher_number={number}") == {"number"}
    page = c.get(f"/audit-log?since={day}&until={day}&action=review.reject").text
    assert "审核退回" in page and 'value="review.reject" selected' in page  # the filter is kept in the form


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-13-01", "since"),
        ("until=昨天", "until"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("action=drop.table", "action"),
        ("unit_id=abc", "unit_id"),
        ("unit_id={sibling}", "unit_id"),
        ("unit_id=99999999999999999999", "unit_id"),
        ("teacher_number=123", "teacher_number"),
        ("username=%00", "username"),
        ("before=-1", "before"),
    ],
)
def test_a_bad_audit_filter_is_refused_next_to_its_field(site, query, field):
    r = site.client("county_info").get("/audit-log?" + query.format(sibling=site.ids["440105"]))
    assert r.status_code == 422
    reason = _field_error(r.text, field)
    assert re.search(r"[\u4e00-\u9fff]", reason), f"no Chinese reason next to {field}: {r.text[:3000]}"
    assert _rows(r.text) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("outcome=maybe", "outcome"),
        ("channel=fax", "channel"),
        ("address=" + "1" * 65, "address"),
        ("since=2026/03/01", "since"),
        ("unit_id={sibling}", "unit_id"),
    ],
)
def test_a_bad_login_log_filter_is_refused_next_to_its_field(site, query, field):
    r = site.client("county_admin").get("/login-log?" + query.format(sibling=site.ids["440105"]))
    assert r.status_code == 422
    assert re.search(r"[\u4e00-\u9fff]", _field_error(r.text, field)), r.text[:3000]


def test_every_bad_filter_value_shows_at_once(site):
    query = "since=2026-13-01&teacher_number=123&username=%00&action=x.y&unit_id=abc"
    r = site.client("county_info").get("/audit-log?" + query)
    assert r.status_code == 422
    assert all(_field_error(r.text, f) for f in ("since", "teacher_number", "username", "action", "unit_id"))


def test_older_pages_follow_without_repeating_an_entry(site):
    start = T + dt.timedelta(days=100)
    for i in range(55):
        _record(site, None, "2144000002", at=start + dt.timedelta(minutes=i), target_id=f"P{i:02d}")
    c = site.client("school2_info")
    first = c.get("/audit-log?since=2031-06-10&until=2031-06-10")
    assert first.status_code == 200
    ids = _rows(first.text)
    assert len(ids) == 50 and ids == sorted(ids, key=int, reverse=True)
    assert re.findall(r"P\d\d", first.text)[:2] == ["P54", "P53"]  # newest first
    older = unescape(re.search(r'href="([^"]+)" data-older', first.text).group(1))
    assert "before=" in older and "since=2031-06-10" in older  # the filters are kept
    second = c.get(older)
    rest = _rows(second.text)
    assert len(rest) == 5 and not set(rest) & set(ids)
    assert "data-older" not in second.text and "最新" in second.text


def test_id_numbers_are_masked_on_the_pages(site):
    rid = resident_id("440106", "19900101", "811")
    _record(site, None, "2144000001", reason=f"核对证件 {rid}", target_id="MASK", note=rid)
    html = site.client("school_admin").get("/audit-log?action=node.init&since=2031-03-02&until=2031-03-02").text
    assert "MASK" in html and rid not in html and rid[:6] + "********" + rid[-4:] in html
    other = resident_id("440106", "19900101", "812")
    anon = site.client()
    page = anon.get("/login")  # a teacher typing the ID number of no account
    anon.post("/login", data={"username": other, "password": "x", "csrf_token": csrf_of(page.text)})
    html = site.client("province_admin").get("/login-log?outcome=failed").text
    assert other not in html and other[:6] + "********" + other[-4:] in html and "无此账号" in html


def test_reads_a_read_volume_alert_concerns_are_highlighted(site):
    with session_scope(runtime(site.app).session_factory) as db:
        actor = actor_for(db, db.scalar(select(Account).where(Account.username == "school2_info")))
        path = db.get(Unit, site.ids["2144000002"]).path
        reader = dataclasses.replace(
            ctx(db, actor, now=T + dt.timedelta(days=200)), settings=Settings(read_alert_per_hour=2)
        )
        for n in ("R-1", "R-2", "R-3"):
            trail.record_read(reader, n, path)
    county = site.client("county_info").get("/audit-log?since=2031-09-18&until=2031-09-18").text
    assert len(re.findall(r"data-flagged", county)) == 3 and "超量查阅" in county
    assert len(re.findall(r"data-alert", county)) == 1 and "查阅档案过多预警" in county
    school = site.client("school2_info").get("/audit-log?since=2031-09-18&until=2031-09-18").text
    assert len(_rows(school)) == 3 and "data-flagged" not in school and "data-alert" not in school


def test_the_login_log_shows_attempts_on_the_subtree_s_accounts(site):
    site.client("school2_info")  # a successful login
    anon = site.client()
    page = anon.get("/login")
    anon.post("/login", data={"username": "school2_info", "password": "wrong", "csrf_token": csrf_of(page.text)})
    county = site.client("county_admin").get("/login-log?username=school2_info&outcome=failure")
    assert county.status_code == 200
    assert len(_rows(county.text)) == 1 and "用户名或密码错误" in county.text and "网页" in county.text
    assert _rows(site.client("county_admin").get("/login-log?username=school2_info&outcome=success").text)
    assert not _rows(site.client("school_admin").get("/login-log?username=school2_info").text)  # a sibling school
    assert _rows(site.client("province_admin").get("/login-log?username=school2_info&outcome=failure").text)
    assert not _rows(site.client("county_admin").get("/login-log?username=haizhu_info").text)  # the other county


def test_the_menu_shows_the_security_audit_section_to_those_who_may_use_it(site):
    def nav(who: str) -> str:
        home = site.client(who).get("/").text
        return home.split('aria-label="主菜单"', 1)[1].split("</nav>", 1)[0]

    admin, info, query = nav("school_admin"), nav("school_info"), nav("school_query")
    assert "安全审计" in admin and "/audit-log" in admin and "/login-log" in admin
    assert "安全审计" in info and "/audit-log" in info and "/login-log" not in info
    assert "安全审计" not in query and "/audit-log" not in query


def _token(site, who: str) -> dict[str, str]:
    r = site.client().post("/api/v1/auth/login", json={"username": who, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json['token']}"}


def test_the_api_takes_the_same_filters_and_names_the_field_of_a_bad_one(site):
    at = T + dt.timedelta(days=300)  # 2031-12-27 09:00 北京时间
    for i in range(3):
        _record(site, "county_info", "2144000001", at=at + dt.timedelta(minutes=i), target_id=f"API-{i}")
    h, c = _token(site, "county_info"), site.client()
    for query, field in (
        ("since=yesterday", "since"),
        ("action=drop.table", "action"),
        (f"unit_id={site.ids['440105']}", "unit_id"),
        ("teacher_number=123", "teacher_number"),
        ("before=0", "before"),
        ("since=2031-03-02T00:00&until=2031-03-01T00:00", "until"),
    ):
        r = c.get(f"/api/v1/audit-events?{query}", headers=h)
        assert r.status_code == 422 and r.json["code"] == "validation_failed", (query, r.json)
        assert [e["field"] for e in r.json["details"]["errors"]] == [field], (query, r.json)
    window = "since=2031-12-27T09:00%2B08:00&until=2031-12-27T09:02%2B08:00"  # with an offset: 北京时间
    r = c.get(f"/api/v1/audit-events?{window}&username=county_info&action=node.init&limit=1", headers=h)
    assert r.status_code == 200, r.json
    assert [e["target_id"] for e in r.json["events"]] == ["API-1"] and r.json["next_before"]
    assert (
        r.json["events"][0]["action_label"] == "节点初始化" and r.json["events"][0]["actor_username"] == "county_info"
    )
    older = c.get(f"/api/v1/audit-events?{window}&limit=1&before={r.json['next_before']}", headers=h).json
    assert [e["target_id"] for e in older["events"]] == ["API-0"] and older["next_before"] is None
    naive = c.get("/api/v1/audit-events?since=2031-12-27T01:02:00&until=2031-12-27T01:03:00", headers=h).json
    assert [e["target_id"] for e in naive["events"]] == ["API-2"]  # without an offset: UTC

    anon = site.client()
    page = anon.get("/login")
    anon.post("/login", data={"username": "school_query", "password": "wrong", "csrf_token": csrf_of(page.text)})
    h = _token(site, "county_admin")
    r = c.get("/api/v1/login-events?outcome=failure&channel=web&username=school_query", headers=h)
    assert r.status_code == 200 and r.json["events"][0]["outcome_label"] == "用户名或密码错误"
    r = c.get("/api/v1/login-events?outcome=maybe", headers=h)
    assert r.status_code == 422 and r.json["details"]["errors"][0]["field"] == "outcome"


def test_every_account_sees_its_own_login_records_and_the_previous_sign_in(site):
    anon = site.client()
    page = anon.get("/login")
    for who in ("school3_info", "school2_info"):  # a wrong password under each username
        anon.post("/login", data={"username": who, "password": "wrong", "csrf_token": csrf_of(page.text)})
    first = site.client("school3_info")
    second = site.client("school3_info")  # signs in again: the first sign-in is the previous one now
    mine = second.get("/my-logins")
    assert mine.status_code == 200
    outcomes = re.findall(r'data-outcome="(\w+)"', mine.text)
    assert outcomes.count("failed") == 1 and outcomes.count("success") >= 2, outcomes  # not school2_info's failure
    assert outcomes[0] == "success" and "网页" in mine.text and "127.0.0.1" in mine.text
    failed = second.get("/my-logins?outcome=failure").text
    assert re.findall(r'data-outcome="(\w+)"', failed) == ["failed"] and "用户名或密码错误" in failed
    bad = second.get("/my-logins?outcome=maybe&since=2026-13-01")
    assert bad.status_code == 422
    assert _field_error(bad.text, "outcome") == "没有这种登录结果，请从列表中选择" and _field_error(bad.text, "since")
    home = second.get("/").text
    line = home.split("data-last-sign-in>", 1)[1].split("</p>", 1)[0]
    assert "上次登录：" in line and "网页，127.0.0.1" in line and "/my-logins" in line
    assert '/my-logins">登录记录</a>' in first.get("/").text  # the header links it on every page

    h = _token(site, "county_admin")
    c = site.client()
    own = c.get("/api/v1/login-events?own=true&limit=1000", headers=h).json["events"]
    everyone = c.get("/api/v1/login-events?limit=1000", headers=h).json["events"]
    admin_id = own[0]["account_id"]
    assert own and {e["account_id"] for e in own} == {admin_id} and len(everyone) > len(own)


def _csv_rows(r) -> list[list[str]]:
    import csv
    import io

    assert r.status_code == 200 and r.mimetype == "text/csv", r.text[:2000]
    assert r.data.startswith("\ufeff".encode()), "a BOM, for Excel"
    return list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))


def test_the_logs_download_as_csv_with_the_page_s_filters_and_the_download_is_recorded(site, monkeypatch):
    from provincial_node.audit_trail import views

    start = T + dt.timedelta(days=250)  # 2031-11-07 北京时间
    for i in range(12):
        reason = '=HYPERLINK("http://x")' if i == 11 else f"理由{i}"
        _record(
            site, "county_info", "2144000001", at=start + dt.timedelta(minutes=i), target_id=f"D{i:02d}", reason=reason
        )
    c = site.client("county_info")
    query = "since=2031-11-07&until=2031-11-07&username=county_info"
    page = c.get("/audit-log?" + query).text
    link = unescape(re.search(r'href="([^"]+)" data-download', page).group(1))
    assert link.startswith("/audit-log.csv?") and "since=2031-11-07" in link and "before" not in link
    r = c.get(link)
    rows = _csv_rows(r)
    assert rows[0] == list(views.AUDIT_COLUMNS)
    assert [row[6] for row in rows[1:]] == [f"D{i:02d}" for i in range(11, -1, -1)]  # every entry, newest first
    assert rows[1][1] == "2031-11-07 09:11:00" and rows[1][2] == "county_info" and rows[1][4] == "节点初始化"
    assert rows[1][8] == '\'=HYPERLINK("http://x")'  # a formula stays text in a spreadsheet
    assert "filename*=UTF-8''%E6%93%8D%E4%BD%9C%E6%97%A5%E5%BF%97-" in r.headers["Content-Disposition"]  # 操作日志-…
    later = c.get("/audit-log?action=audit.download&username=county_info").text
    assert "下载操作日志" in later and "行数：</span>12<" in later  # the download is itself on the record
    assert "开始时间=2031-11-07，结束时间=2031-11-07，用户名=county_info" in later

    assert "data-download" not in c.get("/audit-log?since=2041-01-01").text  # nothing found: nothing to download
    bad = c.get("/audit-log.csv?since=2031-13-01")
    assert bad.status_code == 422 and bad.mimetype == "text/html" and _field_error(bad.text, "since")
    monkeypatch.setattr(views, "DOWNLOAD_LIMIT", 5)
    monkeypatch.setattr(views, "TOO_MANY", "超过 5 条")
    too_many = c.get(link)
    assert too_many.status_code == 422 and "超过 5 条" in too_many.text and "data-download-error" in too_many.text
    monkeypatch.undo()
    downloads = c.get("/audit-log?action=audit.download&username=county_info").text
    assert len(_rows(downloads)) == 1  # the refused download wrote nothing

    anon = site.client()
    login_page = anon.get("/login")
    anon.post("/login", data={"username": "=1+2", "password": "wrong", "csrf_token": csrf_of(login_page.text)})
    rows = _csv_rows(site.client("province_admin").get("/login-log.csv?outcome=failure&username=%3D1%2B2"))
    assert rows[0] == list(views.LOGIN_COLUMNS) and len(rows) == 2
    assert rows[1][1] == "'=1+2" and rows[1][3] == "（无此账号）" and rows[1][4] == "用户名或密码错误"
    assert site.client("school_query").get("/login-log.csv").status_code == 403
