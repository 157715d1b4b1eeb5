"""The provincial API through the real Flask app (module-scoped: one database per test module and dialect)."""

from __future__ import annotations

import pytest

from common import migrations
from common.db import make_session_factory, session_scope
from common.http import runtime_of
from common.protection import DataKeys
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts import accounts, passwords, units
from provincial_node.app import create_app
from provincial_node.config import config_from_env as provincial_config_from_env
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, UNITS_CSV

NEW_PASSWORD = "Changed-pass-2026"


@pytest.fixture(scope="module")
def app(database_url_factory, tmp_path_factory):
    config = provincial_config_from_env(
        {
            "TMIS_DATABASE_URL": database_url_factory("api"),
            "TMIS_DATA_DIR": str(tmp_path_factory.mktemp("api")),
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
    with session_scope(make_session_factory(engine)) as s:
        units.import_units_csv(ctx(s, None), UNITS_CSV)
        for name, code, role in (
            ("p_admin", "440000", "sysadmin"),
            ("th_info", "440106", "infoadmin"),
            ("hz_info", "440105", "infoadmin"),
            ("s1_info", "2144000001", "infoadmin"),
            ("s1_admin", "2144000001", "sysadmin"),
            ("s2_info", "2144000002", "infoadmin"),
            ("s3_info", "3444000003", "infoadmin"),
            ("s1_rev", "2144000001", "infoadmin"),
            ("p_info", "440000", "infoadmin"),
            ("lock_me", "3444000003", "infoadmin"),
        ):
            accounts.create_account(
                ctx(s, None),
                username=name,
                real_name=name,
                unit=units.get_unit_by_code(s, code),
                role=role,
                password=PASSWORD,
            )
    yield app
    engine.dispose()


@pytest.fixture(scope="module")
def tokens(app):
    client = app.test_client()
    out = {}
    for name in ("p_admin", "th_info", "hz_info", "s1_info", "s1_admin", "s2_info", "s3_info", "s1_rev", "p_info"):
        t = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD}).json["token"]
        r = client.get("/api/v1/teachers", headers={"Authorization": f"Bearer {t}"})
        assert r.status_code == 403 and r.json["details"]["reason"] == "password_change_required"
        assert (
            client.post(
                "/api/v1/auth/password",
                headers={"Authorization": f"Bearer {t}"},
                json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            ).status_code
            == 200
        )
        out[name] = t
    return out
