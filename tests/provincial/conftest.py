"""A small province (44 广东) for provincial-node tests, built through the services on both databases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from common.catalogue import load_catalogue
from provincial_node.accounts import accounts, passwords, units
from provincial_node.accounts.access import actor_for
from provincial_node.context import Actor, ProvinceContext
from tests.helpers import ctx

PASSWORD = "Tmis-test-2026"
UNITS_CSV = """code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code
440000,广东省教育厅,province,,,,,,
440100,广州市教育局,city,440000,,,,,
440106,天河区教育局,county,440100,,,,,
440105,海珠区教育局,county,440100,,,,,
2144000001,天河区第一小学,school,440106,,211,111,,440106
2144000002,天河区第二小学,school,440106,,211,111,,440106
3444000003,海珠区第一中学,school,440105,,342,111,,440105
"""


def reviewer(name: str) -> str:
    """The school's reviewer account for the school's entry account (``school1_info`` → ``school1_rev``)."""
    return name.replace("_info", "_rev") if name.startswith("school") else name


@pytest.fixture
def node() -> str:
    return "province"


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing():
    # Argon2id with test-sized parameters: the suite creates hundreds of accounts
    from argon2 import PasswordHasher

    passwords.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Province:
    session: Session
    catalogue: object
    units: dict
    actors: dict

    def actor(self, name: str) -> Actor:
        return self.actors[name]

    def ctx(
        self,
        who: str | Actor | None = None,
        *,
        province: str = "44",
        now: dt.datetime | None = None,
        expiry: dt.timedelta | None = None,
    ) -> ProvinceContext:
        """The context of a request by ``who`` (a name of :data:`people`, an Actor, or None for the node)."""
        actor = self.actors[who] if isinstance(who, str) else who
        return ctx(self.session, actor, province=province, now=now, expiry=expiry)


@pytest.fixture
def province(db_session: Session) -> Province:
    return build_province(db_session)


def build_province(db_session: Session) -> Province:
    """The units and accounts of :data:`UNITS_CSV`, through the services, in ``db_session`` (not committed)."""
    cat = load_catalogue()
    units.import_units_csv(ctx(db_session), UNITS_CSV)
    u = {
        code: units.get_unit_by_code(db_session, code)
        for code in ("440000", "440100", "440106", "440105", "2144000001", "2144000002", "3444000003")
    }
    people = {
        "province_admin": ("440000", "sysadmin"),
        "province_info": ("440000", "infoadmin"),
        "city_info": ("440100", "infoadmin"),
        "city_admin": ("440100", "sysadmin"),
        "tianhe_admin": ("440106", "sysadmin"),
        "tianhe_info": ("440106", "infoadmin"),
        "haizhu_info": ("440105", "infoadmin"),
        "tianhe_query": ("440106", "query"),
        "school1_admin": ("2144000001", "sysadmin"),
        "school1_info": ("2144000001", "infoadmin"),
        "school2_info": ("2144000002", "infoadmin"),
        "school3_info": ("3444000003", "infoadmin"),
        # a second information administrator per school: the reviewer (谁填报谁负责、谁审核谁负责)
        "school1_rev": ("2144000001", "infoadmin"),
        "school2_rev": ("2144000002", "infoadmin"),
        "school3_rev": ("3444000003", "infoadmin"),
    }
    actors = {}
    for name, (code, role) in people.items():
        acc = accounts.create_account(
            ctx(db_session), username=name, real_name=name, unit=u[code], role=role, password=PASSWORD
        )
        actors[name] = actor_for(db_session, acc)
    db_session.flush()
    return Province(db_session, cat, u, actors)
