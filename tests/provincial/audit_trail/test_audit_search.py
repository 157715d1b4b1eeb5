"""Reading the audit trail and the login log (provincial_node/audit_trail/search.py) on SQLite and PostgreSQL:
each filter narrows the answer, a bad filter value is a field error naming the field, keyset pages cover every
entry once, nothing outside the reader's subtree is ever returned, ID numbers are masked, and the reads an alert
concerns are flagged."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from common.errors import PermissionDeniedError, ValidationError
from provincial_node.audit_trail import search, trail
from provincial_node.audit_trail.logins import LoginOutcome, record_login
from provincial_node.context import Settings
from provincial_node.rules import mask_id_numbers_in
from provincial_node.teacher_files import files
from tests.factories import resident_id
from tests.provincial.conftest import Province

T0 = dt.datetime(2031, 3, 2, 1, 0, tzinfo=dt.UTC)  # after everything the fixtures record


def _event(p: Province, who: str | None, unit: str, action: str = "node.init", *, at: dt.datetime = T0, **kw):
    c = p.ctx(who, now=at)
    return trail.record(c, action, kw.pop("target_type", "node"), kw.pop("target_id", "x"), p.units[unit].path, **kw)


def _targets(found: search.Found) -> list[str]:
    return [e.target_id for e in found.rows]


def test_the_subtree_only_whatever_the_filters(province):
    p = province
    for code in ("440000", "440100", "440106", "440105", "2144000001", "3444000003"):
        _event(p, None, code, target_id=code)
    p.session.flush()
    seen = {
        who: set(_targets(search.audit_events(p.ctx(who), search.AuditFilter(action="node.init"))))
        for who in ("province_admin", "tianhe_info", "school1_admin", "haizhu_info")
    }
    assert seen == {
        "province_admin": {"440000", "440100", "440106", "440105", "2144000001", "3444000003"},
        "tianhe_info": {"440106", "2144000001"},  # never the city above nor the sibling county
        "school1_admin": {"2144000001"},
        "haizhu_info": {"440105", "3444000003"},
    }
    with pytest.raises(PermissionDeniedError):
        search.audit_events(p.ctx("tianhe_query"))


def test_each_audit_filter_narrows_the_answer(province):
    p = province
    t = files.register_teacher(
        p.ctx("school1_info"),
        p.units["2144000001"].id,
        {"XM": "张三", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", "701")},
    )
    _event(p, "school1_info", "2144000001", "review.approve", at=T0, target_type="teacher", target_id=t.teacher_number)
    _event(p, "school1_rev", "2144000001", "transfer.start", at=T0 + dt.timedelta(hours=2), teacher=t.teacher_number)
    _event(p, "tianhe_info", "440106", "account.unlock", at=T0 + dt.timedelta(days=1), target_id="a")
    _event(p, "tianhe_info", "2144000002", "account.unlock", at=T0 + dt.timedelta(days=2), target_id="b")
    p.session.flush()
    c = p.ctx("tianhe_admin")

    def actions(**kw):
        rows = search.audit_events(c, search.AuditFilter(**kw)).rows
        return [e.action for e in rows if e.at >= T0 and e.action != "files.register"]

    assert actions(username="tianhe_info") == ["account.unlock", "account.unlock"]
    assert actions(username="nobody") == []
    assert actions(action="review.approve") == ["review.approve"]
    assert actions(unit_id=p.units["2144000002"].id) == ["account.unlock"]
    assert actions(teacher_number=t.teacher_number) == ["transfer.start", "review.approve"]
    assert actions(since=T0 + dt.timedelta(hours=1), until=T0 + dt.timedelta(days=1)) == ["transfer.start"]
    assert actions(since=T0 + dt.timedelta(days=1)) == ["account.unlock", "account.unlock"]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"action": "no.such_action"}, "action"),
        ({"teacher_number": "123"}, "teacher_number"),
        ({"teacher_number": "4400000000010"}, "teacher_number"),  # a wrong check character
        ({"username": "x" * 65}, "username"),
        ({"username": "a\x00b"}, "username"),
        ({"since": T0, "until": T0}, "until"),
        ({"unit_id": 2**31 - 1}, "unit_id"),
    ],
    ids=["action", "teacher-number-short", "teacher-number-check", "username-long", "username-nul", "period", "unit"],
)
def test_a_bad_audit_filter_names_the_field(province, filters, field):
    with pytest.raises(ValidationError) as e:
        search.audit_events(province.ctx("tianhe_admin"), search.AuditFilter(**filters))
    assert [(x.field, x.group) for x in e.value.errors] == [(field, "query")]
    assert e.value.errors[0].reason_zh  # the pages show it next to the field


def test_a_unit_outside_the_subtree_is_a_field_error_not_an_answer(province):
    p = province
    for who, unit in (("school1_admin", "440106"), ("school1_admin", "2144000002"), ("tianhe_info", "440105")):
        with pytest.raises(ValidationError) as e:
            search.audit_events(p.ctx(who), search.AuditFilter(unit_id=p.units[unit].id))
        assert e.value.errors[0].field == "unit_id"
        with pytest.raises(ValidationError):
            search.login_events(p.ctx(who), search.LoginFilter(unit_id=p.units[unit].id))


def test_keyset_pages_cover_every_entry_once_newest_first(province):
    p = province
    for i in range(7):
        _event(p, None, "2144000001", at=T0 + dt.timedelta(minutes=i), target_id=f"p{i}")
    p.session.flush()
    c, f = p.ctx("school1_admin"), search.AuditFilter(action="node.init")
    pages, before = [], None
    while True:
        found = search.audit_events(c, f, before=before, limit=3)
        pages.append(_targets(found))
        before = found.next_before
        if before is None:
            break
    assert pages == [["p6", "p5", "p4"], ["p3", "p2", "p1"], ["p0"]]
    with pytest.raises(ValidationError) as e:
        search.audit_events(c, f, before=0)
    assert e.value.errors[0].field == "before"


def _login(p: Province, username: str, outcome: LoginOutcome, *, channel: str = "web", address: str = "10.0.0.1"):
    account = p.actors.get(username)
    path = p.units["440000"].path
    if account is not None:
        path = account.unit_path
    record_login(
        p.session,
        at=T0,
        username=username,
        account_id=account.account_id if account else None,
        address=address,
        channel=channel,
        outcome=outcome,
        unit_path=path,
    )


def test_the_login_log_filters_scope_and_pages(province):
    p = province
    _login(p, "school1_info", LoginOutcome.SUCCESS, channel="web")
    _login(p, "school1_info", LoginOutcome.FAILED, channel="api", address="10.0.0.9")
    _login(p, "school1_rev", LoginOutcome.LOCKED, channel="web")
    _login(p, "school3_info", LoginOutcome.THROTTLED, channel="cli")
    _login(p, "ghost", LoginOutcome.FAILED)
    p.session.flush()

    def seen(who: str, **kw) -> list[tuple[str, str]]:
        return [(e.username, e.outcome) for e in search.login_events(p.ctx(who), search.LoginFilter(**kw)).rows]

    assert set(seen("tianhe_admin")) == {
        ("school1_info", "success"),
        ("school1_info", "failed"),
        ("school1_rev", "locked"),
    }  # not the other county's school, not the unknown name (kept at the root)
    assert ("ghost", "failed") in seen("province_admin")
    assert seen("tianhe_admin", outcome="failure") == [("school1_rev", "locked"), ("school1_info", "failed")]
    assert seen("tianhe_admin", channel="api") == [("school1_info", "failed")]
    assert seen("tianhe_admin", address="10.0.0.9") == [("school1_info", "failed")]
    assert seen("tianhe_admin", username="school1_rev") == [("school1_rev", "locked")]
    assert seen("tianhe_admin", unit_id=p.units["2144000002"].id) == []
    assert seen("school1_info") == [("school1_info", "failed"), ("school1_info", "success")]  # only one's own
    first = search.login_events(p.ctx("tianhe_admin"), limit=2)
    rest = search.login_events(p.ctx("tianhe_admin"), before=first.next_before, limit=2)
    assert len(first.rows) == 2 and len(rest.rows) == 1 and rest.next_before is None
    for bad, field in (
        ({"outcome": "maybe"}, "outcome"),
        ({"channel": "fax"}, "channel"),
        ({"address": "1" * 65}, "address"),
    ):
        with pytest.raises(ValidationError) as e:
            search.login_events(p.ctx("tianhe_admin"), search.LoginFilter(**bad))
        assert e.value.errors[0].field == field


def test_id_numbers_are_masked_in_what_the_logs_show(province):
    p = province
    rid = resident_id("440106", "19880315", "702")
    _event(p, None, "2144000001", reason=f"核对 {rid} 的档案", target_type="teacher", target_id=rid, note=[rid])
    _login(p, rid, LoginOutcome.FAILED)
    p.session.flush()
    (row,) = search.audit_rows(p.ctx("school1_admin"), search.audit_events(p.ctx("school1_admin"), limit=1).rows)
    masked = rid[:6] + "********" + rid[-4:]
    assert (
        row["target_id"] == masked and row["reason"] == f"核对 {masked} 的档案" and row["details"]["note"] == [masked]
    )
    login = search.login_rows(p.ctx("province_admin"), search.login_events(p.ctx("province_admin"), limit=1).rows)
    assert login[0]["username"] == masked
    # teacher numbers (13 characters) and other numbers stay as they are
    assert mask_id_numbers_in("4400000000018 / 20260301 / 12345678901234567") == (
        "4400000000018 / 20260301 / 12345678901234567"
    )


def test_reads_an_alert_concerns_are_flagged_for_the_units_that_see_the_alert(province):
    p = province
    limit = 2
    reader = dataclasses.replace(p.ctx("school1_info"), settings=Settings(read_alert_per_hour=limit))
    ids = []
    for i in range(limit + 2):
        t = files.register_teacher(
            p.ctx("school1_info"),
            p.units["2144000001"].id,
            {"XM": f"教师{i}", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", f"{720 + i}")},
        )
        ids.append(t.id)
    for tid in ids:
        files.read_file(reader, tid)
    other = files.register_teacher(
        p.ctx("school2_info"),
        p.units["2144000002"].id,
        {"XM": "李四", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", "730")},
    )
    files.read_file(p.ctx("tianhe_info"), other.id)  # another account's read: not flagged
    p.session.flush()
    county = search.audit_rows(p.ctx("tianhe_admin"), search.audit_events(p.ctx("tianhe_admin")).rows)
    reads = [r for r in county if r["action"] == "file.read"]
    assert [r["flagged"] for r in reads] == [False] + [True] * len(ids)
    assert [r["alert"] for r in county if r["action"] == "alert.read_volume"] == [True]
    school = search.audit_rows(p.ctx("school1_admin"), search.audit_events(p.ctx("school1_admin")).rows)
    assert [r for r in school if r["flagged"] or r["alert"]] == []  # the alert is the county's, not the school's
