"""The access table (provincial_node/rules.py) against the real API, on SQLite and PostgreSQL.

For every API operation, every role (system administrator, information administrator, query user and training
administrator at province, city, county and school level, and a teacher), and an object of a unit in every
relation to the caller's unit (its own unit, a unit directly below, one further below, a unit of a sibling
subtree, the unit above), the test makes the request and compares the answer with what the table says:
allowed → a 2xx answer (or, for lists, the object is listed); denied → 403 ``forbidden`` or 404 ``not_found``
(or, for lists, not listed). The expectation is computed from the table itself (``rules.rule_for`` and the rule's
scope), so the table and the enforcement cannot drift apart. The pages of the audit trail and the login log run
through the same cases (:data:`PAGES`); tests/provincial/web/test_page_access.py has every page × person.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from common import migrations
from common.chinatime import china_time
from common.db import make_session_factory, session_scope
from common.http import runtime_of
from common.protection import DataKeys
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts import accounts, passwords, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account, Unit
from provincial_node.app import create_app
from provincial_node.audit_trail import trail
from provincial_node.config import config_from_env
from provincial_node.rules import Operation, Relation, relation, rule_for
from provincial_node.teacher_files import change_requests, files, review, self_service
from provincial_node.teacher_files.models import Teacher
from provincial_node.transfers import local
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD

NEW = "Matrix-pass-2026"
TREE = """code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code
440000,广东省教育厅,province,,,,,,
440100,广州市教育局,city,440000,,,,,
440300,深圳市教育局,city,440000,,,,,
440106,天河区教育局,county,440100,,,,,
440105,海珠区教育局,county,440100,,,,,
440304,福田区教育局,county,440300,,,,,
2144000001,天河区第一小学,school,440106,,211,111,,440106
2144000002,天河区第二小学,school,440106,,211,111,,440106
2144000003,海珠区第一小学,school,440105,,211,111,,440105
2144000004,海珠区第二小学,school,440105,,211,111,,440105
"""
P, C, K1, S1 = "440000", "440100", "440106", "2144000001"
# for each unit an actor sits at: the unit in each relation (None: there is none)
RELATED = {
    P: {Relation.OWN: P, Relation.CHILD: C, Relation.DESCENDANT: K1, Relation.SIBLING: None, Relation.PARENT: None},
    C: {Relation.OWN: C, Relation.CHILD: K1, Relation.DESCENDANT: S1, Relation.SIBLING: "440300", Relation.PARENT: P},
    K1: {
        Relation.OWN: K1,
        Relation.CHILD: S1,
        Relation.DESCENDANT: None,
        Relation.SIBLING: "440105",
        Relation.PARENT: C,
    },
    S1: {
        Relation.OWN: S1,
        Relation.CHILD: None,
        Relation.DESCENDANT: None,
        Relation.SIBLING: "2144000003",
        Relation.PARENT: K1,
    },
}
# schools holding the files of a relation (files live at schools): the unit itself, or a school below it
SCHOOL_OF = {
    P: None,
    C: None,
    K1: S1,
    S1: S1,
    "440300": None,
    "440105": "2144000003",
    "2144000003": "2144000003",
}
ACTORS = {  # name: (unit, role)
    "p_sa": (P, "sysadmin"),
    "p_ia": (P, "infoadmin"),
    "p_qu": (P, "query"),
    "c_sa": (C, "sysadmin"),
    "c_ia": (C, "infoadmin"),
    "k_sa": (K1, "sysadmin"),
    "k_ia": (K1, "infoadmin"),
    "k_qu": (K1, "query"),
    "k_tr": (K1, "training"),
    "s_sa": (S1, "sysadmin"),
    "s_ia": (S1, "infoadmin"),
    "s_qu": (S1, "query"),
    "s_tr": (S1, "training"),
    "teacher": (S1, "teacher"),
}
HELPERS = {  # accounts that prepare objects (never the callers)
    "h_entry_s1": (S1, "infoadmin"),
    "h_rev_s1": (S1, "infoadmin"),
    "h_entry_s2": ("2144000002", "infoadmin"),
    "h_rev_s2": ("2144000002", "infoadmin"),
    "h_entry_s3": ("2144000003", "infoadmin"),
    "h_rev_s3": ("2144000003", "infoadmin"),
    "h_k1": (K1, "infoadmin"),
    "h_k2": ("440105", "infoadmin"),
    "h_c": (C, "infoadmin"),
    "h_k2_sa": ("440105", "sysadmin"),
    "h_c2_sa": ("440300", "sysadmin"),
    "h_s3_sa": ("2144000003", "sysadmin"),
    "h_entry_s4": ("2144000004", "infoadmin"),
    "h_rev_s4": ("2144000004", "infoadmin"),
}
# accounts whose failed logins the login-log cases make (a locked account must not be a caller's)
VICTIMS = {code: f"v_{code}" for code in (P, C, K1, S1, "440300", "440105", "2144000003")}
HELPERS.update({name: (code, "infoadmin") for code, name in VICTIMS.items()})
ENTRY = {S1: "h_entry_s1", "2144000002": "h_entry_s2", "2144000003": "h_entry_s3", "2144000004": "h_entry_s4"}
SAME_COUNTY = {S1: "2144000002", "2144000002": S1, "2144000003": "2144000004", "2144000004": "2144000003"}
SCHOOL_REVIEWER = {S1: "h_rev_s1", "2144000002": "h_rev_s2", "2144000003": "h_rev_s3", "2144000004": "h_rev_s4"}
BUREAU_REVIEWER = {K1: "h_k1", "440105": "h_k2", C: "h_c"}
SEQ = itertools.count(100)
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


@dataclass
class World:
    app: Any
    factory: Any
    tokens: dict[str, str]
    units: dict[str, int]
    accounts: dict[str, int]
    teacher_file: int  # the teacher actor's own file (at S1)

    def call(self, who: str, method: str, url: str, **kw: Any) -> Any:
        return self.app.test_client().open(
            url, method=method, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw
        )

    def actor(self, s: Any, name: str) -> Any:
        return actor_for(s, s.get(Account, self.accounts[name]))


def _basic(seq: int) -> dict[str, Any]:
    rid = resident_id("440106", "19880315", f"{seq:03d}"[-3:])
    base = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
    return {**base, "SFZJH": rid, "XBM": "1" if rid[-2] in "13579" else "2", "XM": f"教师{seq}"}


def new_file(w: World, school: str, *, stage: str = "draft") -> int:
    """A file at ``school`` entered by the school's entry helper, brought to ``stage``: draft | submitted |
    school_approved | county_approved | effective (the review chain of 211 is school → county → city)."""
    seq = next(SEQ)
    with session_scope(w.factory) as s:
        entry = w.actor(s, ENTRY[school])
        basic = _basic(seq)
        t = files.register_teacher(ctx(s, entry), w.units[school], {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")})
        files.update_group(ctx(s, entry), t.id, "JBXX", basic)
        order = ["submitted", "school_approved", "county_approved", "effective"]
        if stage == "draft":
            return t.id
        files.submit(ctx(s, entry), t.id)
        school_unit = s.get(Unit, w.units[school])
        county = s.get(Unit, school_unit.supervisor_id).code
        reviewers = [SCHOOL_REVIEWER[school], BUREAU_REVIEWER[county], "h_c"]
        for rev in reviewers[: order.index(stage)]:
            review.review(ctx(s, w.actor(s, rev)), t.id, "approve")
        return t.id


@pytest.fixture(scope="module")
def world(database_url_factory, tmp_path_factory) -> Any:
    config = config_from_env(
        {
            "TMIS_DATABASE_URL": database_url_factory("matrix"),
            "TMIS_DATA_DIR": str(tmp_path_factory.mktemp("matrix")),
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
    ids: dict[str, int] = {}
    with session_scope(factory) as s:
        units.import_units_csv(ctx(s, None), TREE)
        units.set_review_chain(ctx(s, None), "211", "county,city")
        unit_ids = {u.code: u.id for u in s.query(Unit).all()}
        for name, (code, role) in {**ACTORS, **HELPERS}.items():
            if role == "teacher":
                continue
            acc = accounts.create_account(
                ctx(s, None),
                username=name,
                real_name=name,
                unit=s.get(Unit, unit_ids[code]),
                role=role,
                password=PASSWORD,
            )
            ids[name] = acc.id
    w = World(app, factory, {}, unit_ids, ids, 0)
    w.teacher_file = new_file(w, S1)
    with session_scope(factory) as s:
        t = s.get(Teacher, w.teacher_file)
        acc = self_service.create_teacher_account(
            ctx(s, w.actor(s, "s_sa")),
            t.id,
            name=t.name,
            gender=t.draft["JBXX"]["XBM"],
            birth_date="1988-03-15",
            id_number=t.doc_number,
            initial_password=PASSWORD,
        )
        ids["teacher"] = acc.id
        username = acc.username
    client = app.test_client()
    for name in ACTORS:
        login = username if name == "teacher" else name
        token = client.post("/api/v1/auth/login", json={"username": login, "password": PASSWORD}).json["token"]
        h = {"Authorization": f"Bearer {token}"}
        r = client.post("/api/v1/auth/password", headers=h, json={"old_password": PASSWORD, "new_password": NEW})
        assert r.status_code == 200, r.json
        w.tokens[name] = token
    yield w
    engine.dispose()


# --- what each operation asks, for an object of a unit -------------------------------------------------------
# A case builder gets the world, the caller and the target unit's code and returns a check: a function of the
# response that says whether the request was allowed (True), denied (False), or None when the answer is neither
# (a failure of the test). Builders return None when the operation has no object at that unit.
Check = Callable[[Any], bool | None]


def _status(ok: tuple[int, ...] = (200, 201)) -> Check:
    def check(r: Any) -> bool | None:
        if r.status_code in ok:
            return True
        if r.status_code in (403, 404) and r.json["code"] in ("forbidden", "not_found"):
            return False
        return None

    return check


def _listed(key: str, wanted: Any, field: str = "id") -> Check:
    def check(r: Any) -> bool | None:
        if r.status_code == 403:
            return False
        if r.status_code != 200:
            return None
        return wanted in [x[field] for x in r.json[key]]

    return check


def _school(code: str) -> str | None:
    return SCHOOL_OF.get(code)


def op_units_read(w: World, who: str, unit: str) -> Any:
    return w.call(who, "GET", "/api/v1/units"), _listed("units", unit, "code")


def op_unit_create(w: World, who: str, unit: str) -> Any:
    n = next(SEQ)
    target = w.units[unit]
    with session_scope(w.factory) as s:
        level = s.get(Unit, target).level
    if level == "school":
        body = {"code": f"D{n}", "name": f"院系{n}", "level": "department", "parent_code": unit}
    else:
        body = {
            "code": f"21440{n:05d}",
            "name": f"新学校{n}",
            "level": "school",
            "parent_code": unit,
            "school_type": "211",
            "supervisor_code": unit,
        }
    return w.call(who, "POST", "/api/v1/units", json=body), _status()


def op_accounts_create(w: World, who: str, unit: str) -> Any:
    n = next(SEQ)
    body = {
        "username": f"new{n}",
        "real_name": "新账号",
        "unit_id": w.units[unit],
        "role": "infoadmin",
        "password": "Created-pass-2026",
        "id_number": resident_id("440106", "19800101", f"{n % 1000:03d}"),
        "phone": "13800138000",
    }
    return w.call(who, "POST", "/api/v1/accounts", json=body), _status()


def _account_at(w: World, unit: str, role: str) -> int | None:
    with session_scope(w.factory) as s:
        acc = s.query(Account).filter_by(unit_id=w.units[unit], role=role).order_by(Account.id).first()
        return acc.id if acc else None


def op_account_manage_sysadmin(w: World, who: str, unit: str) -> Any:
    target = _account_at(w, unit, "sysadmin")
    if target is None or target == w.accounts[who]:
        return None  # no such account, or the caller's own (never managed this way)
    body = {"action": "unlock", "reason": "矩阵测试"}
    return w.call(who, "POST", f"/api/v1/accounts/{target}/actions", json=body), _status()


def op_account_manage_infoadmin(w: World, who: str, unit: str) -> Any:
    target = _account_at(w, unit, "infoadmin")
    if target is None or target == w.accounts[who]:
        return None
    body = {"action": "unlock", "reason": "矩阵测试"}
    return w.call(who, "POST", f"/api/v1/accounts/{target}/actions", json=body), _status()


def op_teacher_account_create(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or school != unit:
        return None
    tid = new_file(w, school)
    with session_scope(w.factory) as s:
        t = s.get(Teacher, tid)
        body = {
            "name": t.name,
            "gender": t.draft["JBXX"]["XBM"],
            "birth_date": "1988-03-15",
            "id_number": t.doc_number,
            "initial_password": "Teacher-pass-2026",
        }
    return w.call(who, "POST", f"/api/v1/teachers/{tid}/account", json=body), _status()


def op_audit_read(w: World, who: str, unit: str) -> Any:
    marker = f"matrix.{next(SEQ)}"
    with session_scope(w.factory) as s:
        trail.record(ctx(s, None), "node.init", "node", marker, s.get(Unit, w.units[unit]).path)
    r = w.call(who, "GET", "/api/v1/audit-events?action=node.init&limit=1000")
    return r, _listed("events", marker, "target_id")


def op_login_log_read(w: World, who: str, unit: str) -> Any:
    target = w.accounts[VICTIMS[unit]]
    with session_scope(w.factory) as s:
        username = s.get(Account, target).username
    w.app.test_client().post(
        "/api/v1/auth/login",
        json={"username": username, "password": "not-the-password"},
        environ_base={"REMOTE_ADDR": f"198.51.100.{next(SEQ) % 250}"},  # not throttled by address: the account's
    )
    r = w.call(who, "GET", "/api/v1/login-events")
    return r, _listed("events", target, "account_id")


# --- the pages of the same operations (the page session of each caller, through the login form) ----------------
_PAGE_CLIENTS: dict[tuple[int, str], Any] = {}
_MINUTES = itertools.count()


def _page_client(w: World, who: str) -> Any:
    key = (id(w), who)
    if key not in _PAGE_CLIENTS:
        with session_scope(w.factory) as s:
            username = s.get(Account, w.accounts[who]).username
        client = w.app.test_client()
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        r = client.post(
            "/login",
            data={"username": username, "password": NEW, "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"192.0.2.{len(_PAGE_CLIENTS) + 1}"},  # 127.0.0.1 is throttled by now
        )
        assert r.status_code == 302, r.text[:300]
        _PAGE_CLIENTS[key] = client
    return _PAGE_CLIENTS[key]


def _page_lists(marker: str) -> Check:
    def check(r: Any) -> bool | None:
        if r.status_code == 403:
            return False
        if r.status_code != 200:
            return None
        return marker in r.text

    return check


def page_audit_log(w: World, who: str, unit: str) -> Any:
    """The event of a unit is on the 操作日志 page (filtered to the one minute it was written in)."""
    marker = f"matrix-page-{next(SEQ)}"
    at = dt.datetime(2032, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=next(_MINUTES))
    with session_scope(w.factory) as s:
        trail.record(ctx(s, None, now=at), "node.init", "node", marker, s.get(Unit, w.units[unit]).path)
    minute = china_time(at)  # the page takes Beijing time
    r = _page_client(w, who).get("/audit-log", query_string={"since": minute, "until": minute})
    return r, _page_lists(marker)


def page_login_log(w: World, who: str, unit: str) -> Any:
    """A failed login of an account of a unit is on the 登录日志 page."""
    target = w.accounts[VICTIMS[unit]]
    with session_scope(w.factory) as s:
        username = s.get(Account, target).username
    w.app.test_client().post(
        "/api/v1/auth/login",
        json={"username": username, "password": "not-the-password"},
        environ_base={"REMOTE_ADDR": f"198.51.100.{next(SEQ) % 250}"},  # not throttled by address: the account's
    )
    r = _page_client(w, who).get("/login-log", query_string={"username": username, "outcome": "failure"})
    return r, _page_lists("<tr data-event=")


PAGES: dict[Operation, Callable[..., Any]] = {
    Operation.AUDIT_READ: page_audit_log,
    Operation.LOGIN_LOG_READ: page_login_log,
}


def op_files_list(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None:
        return None
    tid = new_file(w, school)
    return w.call(who, "GET", "/api/v1/teachers?limit=1000"), _listed("teachers", tid), school


def _file_op(method: str, suffix: str, stage: str = "draft", body: Any = None) -> Callable[..., Any]:
    def op(w: World, who: str, unit: str) -> Any:
        school = _school(unit)
        if school is None or school != unit:
            return None
        tid = new_file(w, school, stage=stage)
        return w.call(who, method, f"/api/v1/teachers/{tid}{suffix}", json=body), _status()

    return op


def op_file_register(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or school != unit:
        return None
    b = _basic(next(SEQ))
    body = {"school_id": w.units[school], "basic": {k: b[k] for k in ("XM", "SFZJLXM", "SFZJH")}}
    return w.call(who, "POST", "/api/v1/teachers", json=body), _status()


def op_file_review(w: World, who: str, unit: str) -> Any:
    """The object's unit is the unit whose review the file waits for."""
    stage, school = {
        S1: ("submitted", S1),
        "2144000003": ("submitted", "2144000003"),
        K1: ("school_approved", S1),
        "440105": ("school_approved", "2144000003"),
        C: ("county_approved", S1),
    }.get(unit, (None, None))
    if stage is None:
        return None
    tid = new_file(w, school, stage=stage)
    return w.call(who, "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"}), _status()


def op_files_import(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or school != unit:
        return None
    body = "教师编号(JSBH),通讯地址(TXDZ)\n".encode()
    return w.call(who, "POST", f"/api/v1/imports/LXFS?school_id={w.units[school]}&format=csv", data=body), _status()


def op_files_export(w: World, who: str, unit: str) -> Any:
    body = {"unit_id": w.units[unit], "reason": "矩阵测试", "groups": ["JBXX"], "format": "csv"}
    return w.call(who, "POST", "/api/v1/exports", json=body), _status()


def _change_request(w: World, school: str) -> int:
    tid = new_file(w, school, stage="effective")
    with session_scope(w.factory) as s:
        cr = change_requests.request_change(
            ctx(s, w.actor(s, ENTRY[school])), tid, [{"group": "JBXX", "field": "XM", "new": "新名"}], "更正"
        )
        return cr.id


def op_change_requests_read(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None:
        return None
    crid = _change_request(w, school)
    return w.call(who, "GET", "/api/v1/change-requests"), _listed("change_requests", crid), school


def op_change_request_decide(w: World, who: str, unit: str) -> Any:
    """The object's unit is the supervising bureau that decides."""
    school = {K1: S1, "440105": "2144000003"}.get(unit)
    if school is None:
        return None
    crid = _change_request(w, school)
    body = {"decision": "approve", "reason": "同意"}
    return w.call(who, "POST", f"/api/v1/change-requests/{crid}/decision", json=body), _status()


def _transfer(w: World, to_school: str, from_school: str, *, approve_receiving_bureau: bool = False) -> int:
    tid = new_file(w, from_school, stage="effective")
    with session_scope(w.factory) as s:
        t = s.get(Teacher, tid)
        x = local.start_transfer(
            ctx(s, w.actor(s, ENTRY[to_school])), t.teacher_number, "1", t.doc_number, w.units[to_school], "工作需要"
        )
        if approve_receiving_bureau:
            bureau = s.get(Unit, s.get(Unit, w.units[to_school]).supervisor_id).code
            local.decide(ctx(s, w.actor(s, BUREAU_REVIEWER[bureau])), x.id, "approve", "同意")
        return x.id


def op_transfers_read(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or (school != unit and relation_between(ACTORS[who][0], unit) == Relation.PARENT):
        return None  # the county above a school: both ends of a request there would include the caller's school
    xid = _transfer(w, school, SAME_COUNTY[school])  # both ends in one county: the object's unit is the county
    county = {S1: K1, "2144000003": "440105"}[school]
    return w.call(who, "GET", "/api/v1/transfers"), _listed("transfers", xid), county if school != unit else school


def op_transfer_start(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or school != unit:
        return None
    tid = new_file(w, "2144000002", stage="effective")
    with session_scope(w.factory) as s:
        t = s.get(Teacher, tid)
        body = {
            "teacher_number": t.teacher_number,
            "doc_type": "1",
            "doc_number": t.doc_number,
            "to_school_id": w.units[school],
            "reason": "工作需要",
        }
    return w.call(who, "POST", "/api/v1/transfers", json=body), _status()


def op_rotation_start(w: World, who: str, unit: str) -> Any:
    school = _school(unit)
    if school is None or school != unit:
        return None
    tid = new_file(w, school, stage="effective")
    body = {
        "teacher_id": tid,
        "with_transfer": False,
        "rotation_type": "1",
        "start_month": "2026-09",
        "end_month": "2027-07",
        "reason": "交流",
        "to_unit_name": "外校",
    }
    return w.call(who, "POST", "/api/v1/rotations", json=body), _status()


def op_transfer_decide(w: World, who: str, unit: str) -> Any:
    """The object's unit is the unit whose step the request waits for."""
    if unit in (S1, "2144000003"):  # the sending school, after the receiving bureau approved
        to = "2144000002" if unit == S1 else S1
        xid = _transfer(w, to, unit, approve_receiving_bureau=True)
    elif unit in (K1, "440105"):  # the receiving bureau of a new request
        to = S1 if unit == K1 else "2144000003"
        xid = _transfer(w, to, "2144000002")
    else:
        return None
    return w.call(who, "POST", f"/api/v1/transfers/{xid}/decision", json={"decision": "approve"}), _status()


def op_transfer_withdraw(w: World, who: str, unit: str) -> Any:
    """The object's unit is the unit that started the request (the receiving school)."""
    school = _school(unit)
    if school is None or school != unit:
        return None
    xid = _transfer(w, school, SAME_COUNTY[school])
    return w.call(who, "POST", f"/api/v1/transfers/{xid}/withdraw", json={"reason": "撤回"}), _status()


def _application(w: World, applicant: str, units: list[str], *, approve: bool = False) -> int:
    """A sharing application by an information administrator of ``applicant`` (a school: its entry helper)."""
    import datetime as dt

    from provincial_node.sharing import applications

    by = ENTRY.get(applicant) or {K1: "h_k1", "440105": "h_k2", C: "h_c"}[applicant]
    with session_scope(w.factory) as s:
        app = applications.apply(
            ctx(s, w.actor(s, by)),
            purpose="统计",
            scenario="年报",
            unit_ids=[w.units[u] for u in units],
            fields=["JBXX.XBM"],
            period_from=dt.datetime.now(dt.UTC).date(),
            period_to=dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30),
        )
        if approve:
            reviewer = {K1: "h_k1", "440105": "h_k2", C: "h_c"}[s.get(Unit, app.reviewer_unit_id).code]
            applications.decide(ctx(s, w.actor(s, reviewer)), app.id, "approve", "同意")
        return app.id


def op_sharing_read(w: World, who: str, unit: str) -> Any:
    """The object's unit is the applicant (a school; the owning level is its county)."""
    school = _school(unit)
    if school is None or school != unit:
        return None
    aid = _application(w, school, [school])
    return w.call(who, "GET", "/api/v1/sharing/applications"), _listed("applications", aid), school


def op_sharing_review(w: World, who: str, unit: str) -> Any:
    """The object's unit is the owning level that reviews (a county: its schools' data)."""
    school = {K1: S1, "440105": "2144000003"}.get(unit)
    if school is None:
        return None
    aid = _application(w, school, [school])
    body = {"decision": "approve"}
    return w.call(who, "POST", f"/api/v1/sharing/applications/{aid}/decision", json=body), _status()


def op_sharing_export(w: World, who: str, unit: str) -> Any:
    """The object's unit is the applicant unit holding the grant."""
    if unit not in (S1, "2144000003", K1, "440105"):
        return None
    school = _school(unit)
    aid = _application(w, unit, [school], approve=True)
    return w.call(who, "POST", f"/api/v1/sharing/applications/{aid}/export?format=csv"), _status()


def _sharing_body() -> dict[str, Any]:
    import datetime as dt

    return {
        "purpose": "统计",
        "scenario": "年报",
        "unit_ids": [1],
        "fields": ["JBXX.XBM"],
        "period_from": dt.datetime.now(dt.UTC).date().isoformat(),
        "period_to": (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat(),
    }


def op_unitless(method: str, url: str, body: Any = None) -> Callable[..., Any]:
    def op(w: World, who: str, unit: str) -> Any:
        if unit != ACTORS[who][0]:
            return None  # the operation concerns the caller's own unit only
        data = body() if callable(body) else body
        return w.call(who, method, url, json=data), _status()

    return op


def op_units_import(w: World, who: str, unit: str) -> Any:
    if unit != ACTORS[who][0]:
        return None
    body = TREE.splitlines()[0] + "\n" + TREE.splitlines()[1] + "\n"  # the province row again: unchanged
    r = w.call(who, "POST", "/api/v1/units/import", data=body.encode(), content_type="text/csv")
    return r, _status()


def op_rotation_end(w: World, who: str, unit: str) -> Any:
    """The object's unit is the sending school of a completed rotation."""
    school = _school(unit)
    if school is None or school != unit:
        return None
    tid = new_file(w, school, stage="effective")
    with session_scope(w.factory) as s:
        x = local.start_rotation(
            ctx(s, w.actor(s, ENTRY[school])),
            tid,
            with_transfer=False,
            rotation_type="1",
            start_month="2026-09",
            end_month="2027-07",
            reason="交流",
            to_unit_name="外校",
        )
        county = s.get(Unit, s.get(Unit, w.units[school]).supervisor_id).code
        local.decide(ctx(s, w.actor(s, BUREAU_REVIEWER[county])), x.id, "approve", "同意")
        xid = x.id
    return w.call(who, "POST", f"/api/v1/transfers/{xid}/end-rotation"), _status()


def _custom_field() -> dict[str, Any]:
    return {"group_code": "JBXX", "code": f"X_M{next(SEQ)}", "label": "矩阵", "type": "text", "filled_by": "school"}


OPS: dict[Operation, Callable[..., Any]] = {
    Operation.UNITS_READ: op_units_read,
    Operation.UNIT_CREATE: op_unit_create,
    Operation.UNITS_IMPORT: op_units_import,
    Operation.ROTATION_END: op_rotation_end,
    Operation.REVIEW_CHAIN_SET: op_unitless("PUT", "/api/v1/review-chains/211", {"levels": "county,city"}),
    Operation.ACCOUNTS_READ: op_unitless("GET", "/api/v1/accounts"),
    Operation.ACCOUNT_CREATE: op_accounts_create,
    Operation.TEACHER_ACCOUNT_CREATE: op_teacher_account_create,
    Operation.LOGIN_LOG_READ: op_login_log_read,
    Operation.AUDIT_READ: op_audit_read,
    Operation.CATALOGUE_READ: op_unitless("GET", "/api/v1/catalogue"),
    Operation.CUSTOM_FIELDS_MANAGE: op_unitless("POST", "/api/v1/custom-fields", _custom_field),
    Operation.FILES_LIST: op_files_list,
    Operation.FILE_READ: _file_op("GET", ""),
    Operation.FILE_HISTORY: _file_op("GET", "/history"),
    Operation.FILE_REGISTER: op_file_register,
    Operation.FILE_EDIT: _file_op("PUT", "/groups/LXFS", body=GOOD_RECORDS["LXFS"]),
    Operation.FILE_SUBMIT: _file_op("POST", "/submit"),
    Operation.FILE_REVIEW: op_file_review,
    Operation.FILES_IMPORT: op_files_import,
    Operation.FILES_EXPORT: op_files_export,
    Operation.CHANGE_REQUESTS_READ: op_change_requests_read,
    Operation.CHANGE_REQUEST_CREATE: _file_op(
        "POST",
        "/change-requests",
        stage="effective",
        body={"changes": [{"group": "JBXX", "field": "XM", "new": "新名"}], "reason": "更正"},
    ),
    Operation.CHANGE_REQUEST_DECIDE: op_change_request_decide,
    Operation.TRANSFERS_READ: op_transfers_read,
    Operation.TRANSFER_START: op_transfer_start,
    Operation.ROTATION_START: op_rotation_start,
    Operation.TRANSFER_DECIDE: op_transfer_decide,
    Operation.TRANSFER_WITHDRAW: op_transfer_withdraw,
    Operation.SHARING_READ: op_sharing_read,
    Operation.SHARING_APPLY: op_unitless("POST", "/api/v1/sharing/applications", _sharing_body),
    Operation.SHARING_REVIEW: op_sharing_review,
    Operation.SHARING_EXPORT: op_sharing_export,
    Operation.NOTICES_MANAGE: op_unitless("POST", "/api/v1/notices", {"title": "通知", "body": "正文"}),
    Operation.SYNC_OPERATE: op_unitless("GET", "/api/v1/sync/status"),
    Operation.OUTBOX_READ: op_unitless("GET", "/api/v1/outbox"),
}
# operations whose object needs more than a unit: tested in their own tests (named here so that every
# operation of the table is accounted for)
ELSEWHERE = {
    Operation.ACCOUNT_MANAGE: "the two account-management cases below (by the target's role)",
    Operation.SECOND_FACTOR_SUPERVISE: "tests/provincial/accounts/test_second_factor.py (only the unit directly above)",
    Operation.SECOND_FACTOR_POLICY: "tests/provincial/accounts/test_second_factor.py (the province's administrator)",
}


def expected(op: Operation, who: str, unit: str, *, target_role: str | None = None) -> bool:
    """What the table says: a rule for the caller's role and level whose scope covers the relation."""
    code, role = ACTORS[who]
    with_level = {P: "province", C: "city", K1: "county", S1: "school"}[code]
    rule = rule_for(op, role, with_level)
    if rule is None:
        return False
    rel = relation_between(code, unit)
    if rule.scope == "self":
        return False  # a teacher's own objects are checked in the teacher tests; other files are never theirs
    if not rule.allows(rel):
        return False
    return not (rel != Relation.OWN and rule.below_roles and target_role not in rule.below_roles)


PATHS: dict[str, str] = {}


def relation_between(actor_unit: str, unit: str) -> Relation:
    from provincial_node.context import Actor

    a = Actor(0, "x", "x", 0, PATHS[actor_unit], "x")
    return relation(a, PATHS[unit])


def _cases(w: World, op: Operation, builder: Callable[..., Any], target_role: str | None = None) -> list[str]:
    with session_scope(w.factory) as s:
        PATHS.update({u.code: u.path for u in s.query(Unit).all()})
    mismatches = []
    ran = 0
    for who, (code, _role) in ACTORS.items():
        for rel, unit in RELATED[code].items():
            if unit is None:
                continue
            built = builder(w, who, unit)
            if built is None:
                continue
            response, check, *object_unit = built
            got = check(response)
            want = expected(op, who, object_unit[0] if object_unit else unit, target_role=target_role)
            code_, role_ = ACTORS[who]
            if (
                role_ == "teacher"
                and rule_for(op, "teacher", "school")
                and rule_for(op, "teacher", "school").scope == "self"
            ):
                want = False  # no object of another person is ever a teacher's
            ran += 1
            if got is None or got != want:
                body = response.json if response.is_json else response.status
                mismatches.append(f"{op} {who} {rel}({unit}): table {want}, API {response.status_code} {body}")
    assert ran, f"no case ran for {op}"
    return mismatches


def test_every_operation_of_the_table_is_tested():
    assert set(Operation) == set(OPS) | set(ELSEWHERE)


@pytest.mark.parametrize("op", list(OPS), ids=str)
def test_access_matrix(world, op):
    assert _cases(world, op, OPS[op]) == []


@pytest.mark.parametrize("op", list(PAGES), ids=str)
def test_access_matrix_pages(world, op):
    """The pages of an operation answer as the API does: allowed → the object's entry is on the page; no rule →
    403; outside the rule's scope → not shown."""
    assert _cases(world, op, PAGES[op]) == []


@pytest.mark.parametrize(
    ("target_role", "builder"),
    [("sysadmin", op_account_manage_sysadmin), ("infoadmin", op_account_manage_infoadmin)],
    ids=["sysadmin", "infoadmin"],
)
def test_access_matrix_account_management(world, target_role, builder):
    """A system administrator manages its own unit's accounts and the system administrators directly below."""
    assert _cases(world, Operation.ACCOUNT_MANAGE, builder, target_role) == []


def test_the_teacher_sees_only_their_own_file_and_requests(world):
    w = world
    assert w.call("teacher", "GET", f"/api/v1/teachers/{w.teacher_file}").status_code == 200
    listed = w.call("teacher", "GET", "/api/v1/teachers").json["teachers"]
    assert [t["id"] for t in listed] == [w.teacher_file]
    other = new_file(w, S1)
    assert w.call("teacher", "GET", f"/api/v1/teachers/{other}").status_code == 404
    assert w.call("teacher", "GET", f"/api/v1/teachers/{other}/history").status_code == 404
    assert w.call("teacher", "GET", "/api/v1/change-requests").json["change_requests"] == []
    assert w.call("teacher", "GET", "/api/v1/transfers").json["transfers"] == []
