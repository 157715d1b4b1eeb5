"""Issue 16, "tried as a new user would", on the provincial node's API: one named test per finding (items 1, 2,
3, 5 and 6 of the issue; the import-file and spreadsheet findings belong to the inputs work). Each failed before
the security work and passes after. Both databases."""

from __future__ import annotations

import itertools

import pytest

from common import migrations
from common.db import make_session_factory, session_scope
from common.http import runtime_of
from common.protection import DataKeys
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts import accounts, passwords, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account
from provincial_node.app import create_app
from provincial_node.config import config_from_env
from provincial_node.context import Settings
from provincial_node.teacher_files import change_requests, files, review
from provincial_node.transfers import local
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, UNITS_CSV

NEW = "Trial-pass-2026"
SEQ = itertools.count(920)
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")
PEOPLE = {
    "s1_admin": ("2144000001", "sysadmin"),
    "s1_info": ("2144000001", "infoadmin"),
    "s1_rev": ("2144000001", "infoadmin"),
    "s1_query": ("2144000001", "query"),
    "s1_training": ("2144000001", "training"),
    "s2_info": ("2144000002", "infoadmin"),
    "s2_rev": ("2144000002", "infoadmin"),
    "th_admin": ("440106", "sysadmin"),
    "th_info": ("440106", "infoadmin"),
    "th_query": ("440106", "query"),
    "th_training": ("440106", "training"),
}


class Trial:
    def __init__(self, app, factory):
        self.app, self.factory, self.tokens, self.ids = app, factory, {}, {}

    def call(self, who, method, url, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.app.test_client().open(url, method=method, headers=headers, **kw)

    def login(self, username, password, **kw):
        return self.app.test_client().post(
            "/api/v1/auth/login", json={"username": username, "password": password}, **kw
        )

    def actor(self, s, name):
        return actor_for(s, s.query(Account).filter_by(username=name).one())

    def file(self, seq, *, effective=False, school="2144000001", entry="s1_info", rev="s1_rev"):
        rid = resident_id("440106", "19880315", seq)
        basic = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
        basic.update(SFZJH=rid, XBM="1" if int(seq[-1]) % 2 else "2", XM=f"教师{seq}")
        with session_scope(self.factory) as s:
            c = ctx(s, self.actor(s, entry))
            t = files.register_teacher(
                c, units.get_unit_by_code(s, school).id, {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")}
            )
            files.update_group(c, t.id, "JBXX", basic)
            files.update_group(c, t.id, "LXFS", GOOD_RECORDS["LXFS"])
            if effective:
                files.submit(c, t.id)
                review.review(ctx(s, self.actor(s, rev)), t.id, "approve")
                review.review(ctx(s, self.actor(s, "th_info")), t.id, "approve")
            return t.id, t.teacher_number, rid


@pytest.fixture(scope="module")
def trial(database_url_factory, tmp_path_factory):
    config = config_from_env(
        {
            "TMIS_DATABASE_URL": database_url_factory("trial"),
            "TMIS_DATA_DIR": str(tmp_path_factory.mktemp("trial")),
            "TMIS_PROVINCE_CODE": "44",
        },
        testing=True,
    )
    DataKeys.generate().save(config.data_key_file)
    app = create_app(config)
    engine = runtime_of(app).engine
    migrations.upgrade(engine, MIGRATIONS_DIR)
    from argon2 import PasswordHasher

    passwords.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        units.import_units_csv(ctx(s), UNITS_CSV)
        for name, (code, role) in PEOPLE.items():
            accounts.create_account(
                ctx(s),
                username=name,
                real_name=name,
                unit=units.get_unit_by_code(s, code),
                role=role,
                password=PASSWORD,
            )
    t = Trial(app, factory)
    for name in PEOPLE:
        token = t.login(name, PASSWORD).json["token"]
        r = t.app.test_client().post(
            "/api/v1/auth/password",
            headers={"Authorization": f"Bearer {token}"},
            json={"old_password": PASSWORD, "new_password": NEW},
        )
        assert r.status_code == 200, r.json
        t.tokens[name] = token
    # a teacher of school 1 with a self-service account
    tid, number, rid = t.file("901")
    t.ids["teacher_file"] = tid
    r = t.call(
        "s1_admin",
        "POST",
        f"/api/v1/teachers/{tid}/account",
        json={
            "name": "教师901",
            "gender": "1",
            "birth_date": "1988-03-15",
            "id_number": rid,
            "initial_password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.json
    token = t.login(rid, PASSWORD).json["token"]  # teachers log in with their ID number
    t.app.test_client().post(
        "/api/v1/auth/password",
        headers={"Authorization": f"Bearer {token}"},
        json={"old_password": PASSWORD, "new_password": NEW},
    )
    t.tokens["teacher"] = token
    yield t
    engine.dispose()


def _transfer_started_by_school1(trial):
    """A transfer into school 1 (started by its information administrator) of a teacher of school 2."""
    _tid, number, rid = trial.file(str(next(SEQ)), effective=True, school="2144000002", entry="s2_info", rev="s2_rev")
    with session_scope(trial.factory) as s:
        x = local.start_transfer(
            ctx(s, trial.actor(s, "s1_info")), number, "1", rid, units.get_unit_by_code(s, "2144000001").id, "工作需要"
        )
        return x.id


def test_a_teacher_a_query_user_or_a_training_account_cannot_withdraw_the_schools_requests(trial):
    xid = _transfer_started_by_school1(trial)
    for who in ("teacher", "s1_query", "s1_training", "s1_admin"):
        r = trial.call(who, "POST", f"/api/v1/transfers/{xid}/withdraw", json={"reason": "撤回"})
        assert r.status_code in (403, 404), (who, r.json)
    assert (
        trial.call("s1_info", "POST", f"/api/v1/transfers/{xid}/withdraw", json={"reason": "撤回"}).status_code == 200
    )


def test_the_starting_units_bureau_may_withdraw_its_request(trial):
    xid = _transfer_started_by_school1(trial)
    assert (
        trial.call("th_info", "POST", f"/api/v1/transfers/{xid}/withdraw", json={"reason": "局撤回"}).status_code == 200
    )


def test_a_teacher_cannot_list_colleagues_change_requests_or_transfers(trial):
    colleague, _n, _r = trial.file("903", effective=True)
    with session_scope(trial.factory) as s:
        change_requests.request_change(
            ctx(s, trial.actor(s, "s1_info")),
            colleague,
            [{"group": "LXFS", "field": "SJ", "new": "13912345678"}],
            "换号",
        )
    _transfer_started_by_school1(trial)
    r = trial.call("teacher", "GET", "/api/v1/change-requests")
    assert r.status_code == 200 and r.json["change_requests"] == [] and "13912345678" not in r.get_data(as_text=True)
    assert trial.call("teacher", "GET", "/api/v1/transfers").json["transfers"] == []
    assert trial.call("teacher", "GET", f"/api/v1/teachers/{colleague}").status_code == 404


def test_a_county_system_administrator_cannot_take_over_a_school_information_administrator(trial):
    s1_info = trial.call("s1_admin", "GET", "/api/v1/accounts").json["accounts"]
    target = next(a["id"] for a in s1_info if a["username"] == "s1_info")
    r = trial.call(
        "th_admin", "POST", f"/api/v1/accounts/{target}/actions", json={"action": "reset_password", "reason": "x"}
    )
    assert r.status_code == 403
    # what the county may do: reset the school's system administrator, with a one-time password that ends its
    # sessions and must be changed before anything else
    school_admin = next(a["id"] for a in s1_info if a["username"] == "s1_admin")
    r = trial.call(
        "th_admin",
        "POST",
        f"/api/v1/accounts/{school_admin}/actions",
        json={"action": "reset_password", "reason": "遗忘"},
    )
    assert r.status_code == 200 and r.json["must_change_password"] and r.json["one_time_password"]
    assert trial.call("s1_admin", "GET", "/api/v1/accounts").status_code == 401  # its old token ended
    token = trial.login("s1_admin", r.json["one_time_password"]).json["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert trial.app.test_client().get("/api/v1/accounts", headers=h).status_code == 403  # change it first
    trial.app.test_client().post(
        "/api/v1/auth/password",
        headers=h,
        json={"old_password": r.json["one_time_password"], "new_password": NEW + "x"},
    )
    trial.tokens["s1_admin"] = token


def test_system_administrators_do_not_enter_review_or_approve_files(trial):
    tid, _n, _r = trial.file("904")
    school = trial.call("th_info", "GET", "/api/v1/units").json["units"]
    s1 = next(u["id"] for u in school if u["code"] == "2144000001")
    basic = {"XM": "新人", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19900101", "905")}
    assert trial.call("s1_admin", "POST", "/api/v1/teachers", json={"school_id": s1, "basic": basic}).status_code == 403
    assert (
        trial.call("s1_admin", "PUT", f"/api/v1/teachers/{tid}/groups/LXFS", json=GOOD_RECORDS["LXFS"]).status_code
        == 403
    )
    assert trial.call("s1_info", "POST", f"/api/v1/teachers/{tid}/submit").status_code == 200
    for who in ("s1_admin", "th_admin"):
        r = trial.call(who, "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
        assert r.status_code in (403, 404), (who, r.json)
    assert trial.call("s1_admin", "GET", f"/api/v1/teachers/{tid}").status_code == 403


def test_the_account_that_entered_a_file_cannot_approve_it_at_school_level(trial):
    tid, _n, _r = trial.file("906")
    assert trial.call("s1_info", "POST", f"/api/v1/teachers/{tid}/submit").status_code == 200
    r = trial.call("s1_info", "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
    assert r.status_code == 403 and r.json["details"]["reason"] == "separation_of_duties"
    r = trial.call("s1_rev", "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
    assert r.status_code == 200
    history = trial.call("th_info", "GET", f"/api/v1/teachers/{tid}/history").json["history"]
    approval = history[-1]
    assert (
        approval["action"] == "approve"
        and approval["entered_by"]
        and approval["actor_id"] not in approval["entered_by"]
    )
    events = trial.call("th_info", "GET", "/api/v1/audit-events?action=review.approve").json["events"]
    assert events[0]["details"]["reviewer"] == "s1_rev" and events[0]["details"]["entered_by"] == ["s1_info"]


def test_query_and_training_accounts_do_not_read_whole_files_drafts_history_audit_or_full_id_numbers(trial):
    tid, _n, rid = trial.file("907", effective=True)
    r = trial.call("th_query", "GET", f"/api/v1/teachers/{tid}")
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert rid not in body and r.json["draft"] == {} and "LXFS" not in r.json["data"]
    assert trial.call("th_query", "GET", f"/api/v1/teachers/{tid}/history").status_code == 403
    assert trial.call("th_query", "GET", "/api/v1/audit-events").status_code == 403
    for who in ("th_training", "s1_training"):
        for url in (
            f"/api/v1/teachers/{tid}",
            f"/api/v1/teachers/{tid}/history",
            "/api/v1/audit-events",
            "/api/v1/teachers",
        ):
            assert trial.call(who, "GET", url).status_code == 403, (who, url)


def test_a_one_row_import_does_not_tell_a_school_where_an_id_number_is_on_file(trial):
    _tid, number, rid = trial.file("908")
    units_ = trial.call("th_info", "GET", "/api/v1/units").json["units"]
    s2 = next(u["id"] for u in units_ if u["code"] == "2144000002")
    body = f"身份证件类型(SFZJLXM),身份证件号(SFZJH),姓名(XM)\n1,{rid},某人\n".encode()
    r = trial.call("s2_info", "POST", f"/api/v1/imports/JBXX?school_id={s2}&format=csv", data=body)
    assert r.status_code == 200 and r.json["failed"] == 1 and number not in r.get_data(as_text=True)
    assert r.json["errors"][0]["reason_zh"] == "该证件号已在本省建档"
    seen = trial.call("th_info", "GET", "/api/v1/audit-events?action=files.duplicate_identity").json["events"]
    assert seen[0]["target_id"] == number  # the bureau above sees where


def test_reading_files_one_by_one_leaves_a_trace(trial):
    tid, number, _r = trial.file("909")
    assert trial.call("th_info", "GET", f"/api/v1/teachers/{tid}").status_code == 200
    events = trial.call("th_admin", "GET", "/api/v1/audit-events?action=file.read").json["events"]
    assert any(e["target_id"] == number for e in events)


def test_failed_logins_are_recorded(trial):
    assert trial.login("s2_rev", "Not-the-password-1", environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code == 401
    events = trial.call("th_admin", "GET", "/api/v1/login-events?outcome=failed").json["events"]
    assert any(e["username"] == "s2_rev" and e["address"] == "198.51.100.9" for e in events)


def test_a_sign_out_is_in_the_login_log(trial):
    addr = {"REMOTE_ADDR": "198.51.100.21"}
    token = trial.login("s1_query", NEW, environ_base=addr).json["token"]
    out = trial.app.test_client().post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, environ_base=addr
    )
    assert out.status_code == 200
    events = trial.call("th_admin", "GET", "/api/v1/login-events?outcome=logout").json["events"]
    assert any(
        e["username"] == "s1_query" and e["channel"] == "api" and e["address"] == "198.51.100.21" for e in events
    )


def test_a_token_issued_before_a_lock_out_stops_working(trial):
    token = trial.login("th_query", NEW).json["token"]
    h = {"Authorization": f"Bearer {token}"}
    assert trial.app.test_client().get("/api/v1/me", headers=h).status_code == 200
    for _ in range(Settings().login_max_failures):
        trial.login("th_query", "Wrong-pass-2026", environ_base={"REMOTE_ADDR": "198.51.100.10"})
    assert trial.app.test_client().get("/api/v1/me", headers=h).status_code == 401


@pytest.mark.parametrize("weak", ["Passw0rd", "Aa123456"])
def test_common_passwords_are_refused(trial, weak):
    r = trial.call("s1_query", "POST", "/api/v1/auth/password", json={"old_password": NEW, "new_password": weak})
    assert r.status_code == 422 and {e["field"] for e in r.json["details"]["errors"]} == {"password"}


def test_login_attempts_across_usernames_are_throttled_per_address(trial):
    addr = {"REMOTE_ADDR": "203.0.113.5"}
    answers = [trial.login(f"guess{i}", "Wrong-pass-2026", environ_base=addr).status_code for i in range(25)]
    assert answers[0] == 401 and answers[-1] == 429
    assert trial.login("s1_info", NEW, environ_base={"REMOTE_ADDR": "203.0.113.6"}).status_code == 200


def test_a_disabled_account_answers_like_a_wrong_password(trial):
    accounts_ = trial.call("th_admin", "GET", "/api/v1/accounts").json["accounts"]
    target = next(a["id"] for a in accounts_ if a["username"] == "th_training")
    assert (
        trial.call(
            "th_admin", "POST", f"/api/v1/accounts/{target}/actions", json={"action": "disable", "reason": "离职"}
        ).status_code
        == 200
    )
    disabled = trial.login("th_training", NEW, environ_base={"REMOTE_ADDR": "198.51.100.20"})
    wrong = trial.login("th_info", "Wrong-pass-2026", environ_base={"REMOTE_ADDR": "198.51.100.21"})
    unknown = trial.login("nobody", NEW, environ_base={"REMOTE_ADDR": "198.51.100.22"})
    assert disabled.status_code == wrong.status_code == unknown.status_code == 401
    assert disabled.json == wrong.json == unknown.json


def test_answers_carry_security_headers_and_no_banner_and_health_says_only_up(trial):
    r = trial.app.test_client().get("/health")
    assert r.status_code == 200 and r.json == {"status": "up"}
    for resp in (r, trial.call("th_info", "GET", "/api/v1/me"), trial.login("x", "y")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Cache-Control"] == "no-store"
        assert "Server" not in resp.headers
