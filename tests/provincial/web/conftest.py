"""The provincial node's pages through the Flask test client, on SQLite and PostgreSQL: a small province with an
account of every role at every level, teachers in several states, and helpers that log in through the login
form (with its CSRF token) as a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from common import migrations
from common.db import session_scope
from common.protection import DataKeys
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts import accounts, passwords, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Unit
from provincial_node.app import create_app
from provincial_node.config import config_from_env
from provincial_node.context import runtime
from provincial_node.teacher_files import files, review, self_service
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, UNITS_CSV

WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")
# name → (unit code, role)
PEOPLE = {
    "province_admin": ("440000", "sysadmin"),
    "province_info": ("440000", "infoadmin"),
    "city_info": ("440100", "infoadmin"),
    "county_admin": ("440106", "sysadmin"),
    "county_info": ("440106", "infoadmin"),
    "county_query": ("440106", "query"),
    "haizhu_info": ("440105", "infoadmin"),
    "school_admin": ("2144000001", "sysadmin"),
    "school_info": ("2144000001", "infoadmin"),
    "school_query": ("2144000001", "query"),
    "school_training": ("2144000001", "training"),
    "school2_info": ("2144000002", "infoadmin"),
    "school3_info": ("3444000003", "infoadmin"),
}


def basic(seq: str, **over: str) -> dict:
    rid = resident_id("440106", "19880315", seq)
    out = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
    return {**out, "SFZJH": rid, "XBM": "1" if int(seq[-1]) % 2 else "2", "XM": f"教师{seq}", **over}


@dataclass
class Site:
    app: object
    ids: dict[str, int] = field(default_factory=dict)  # unit code → id
    teachers: dict[str, int] = field(default_factory=dict)  # label → teacher id

    def client(self, who: str | None = None) -> FlaskClient:
        c = self.app.test_client()
        if who is not None:
            login(c, who)
        return c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302, r.text[:500]


def post(client: FlaskClient, path: str, data: dict | None = None, *, token_from: str | None = None, **kw):
    """POST a page form with the CSRF token of the page ``token_from`` (default: the home page)."""
    page = client.get(token_from or "/")
    return client.post(path, data={**(data or {}), "csrf_token": csrf_of(page.text)}, **kw)


@pytest.fixture(scope="module")
def site(database_url_factory, tmp_path_factory) -> Site:
    from argon2 import PasswordHasher

    passwords.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    config = config_from_env(
        {
            "TMIS_DATABASE_URL": database_url_factory("web"),
            "TMIS_DATA_DIR": str(tmp_path_factory.mktemp("web")),
            "TMIS_PROVINCE_CODE": "44",
        },
        testing=True,
    )
    DataKeys.generate().save(config.data_key_file)
    app = create_app(config)
    rt = runtime(app)
    migrations.upgrade(rt.engine, MIGRATIONS_DIR)
    s = Site(app)
    with session_scope(rt.session_factory) as db:
        units.import_units_csv(ctx(db), UNITS_CSV)
        s.ids = {u.code: u.id for u in db.scalars(select(Unit))}
        made = {}
        for name, (code, role) in PEOPLE.items():
            acc = accounts.create_account(
                ctx(db),
                username=name,
                real_name=name,
                unit=db.get(Unit, s.ids[code]),
                role=role,
                password=PASSWORD,
            )
            acc.must_change_password = False
            made[name] = actor_for(db, acc)
        # the school's reviewer, a second information administrator (谁填报谁负责、谁审核谁负责); not in PEOPLE
        rev = accounts.create_account(
            ctx(db), username="school_rev", real_name="school_rev", unit=db.get(Unit, s.ids["2144000001"]),
            role="infoadmin", password=PASSWORD,
        )  # fmt: skip
        rev.must_change_password = False
        made["school_rev"] = actor_for(db, rev)
        school, county = made["school_info"], made["county_info"]
        # a draft, a submitted file, an effective one (with a teacher account), one at the other county's school
        t_draft = files.register_teacher(
            ctx(db, school), s.ids["2144000001"], {k: basic("501")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
        )
        files.update_group(ctx(db, school), t_draft.id, "JBXX", basic("501"))
        t_sub = files.register_teacher(
            ctx(db, school), s.ids["2144000001"], {k: basic("502")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
        )
        files.update_group(ctx(db, school), t_sub.id, "JBXX", basic("502"))
        files.submit(ctx(db, school), t_sub.id)
        t_eff = files.register_teacher(
            ctx(db, school), s.ids["2144000001"], {k: basic("503")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
        )
        files.update_group(ctx(db, school), t_eff.id, "JBXX", basic("503"))
        files.submit(ctx(db, school), t_eff.id)
        review.review(ctx(db, made["school_rev"]), t_eff.id, "approve")
        review.review(ctx(db, county), t_eff.id, "approve")
        acc = self_service.create_teacher_account(
            ctx(db, made["school_admin"]),
            t_eff.id,
            name=t_eff.name,
            gender="1",
            birth_date="1988-03-15",
            id_number=t_eff.doc_number,
            initial_password=PASSWORD,
        )
        acc.must_change_password = False
        haizhu = made["school3_info"]
        t_other = files.register_teacher(
            ctx(db, haizhu), s.ids["3444000003"], {k: basic("504")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
        )
        s.teachers = {"draft": t_draft.id, "submitted": t_sub.id, "effective": t_eff.id, "other": t_other.id}
        s.teacher_login = acc.username
    yield s
    rt.engine.dispose()
