"""The second factor through the pages (test client, both databases; a software authenticator stands in for the
key): an account that must use a key is held at the key check until it has enrolled one with the code the unit
above gave it; then it signs in with the key (or a recovery code); exports need a recent key check (step-up);
the API gives such accounts no token for a password, only the page does after a key check."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from common.db import session_scope
from provincial_node.accounts import accounts
from provincial_node.accounts import second_factor as sf
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account, Unit, WebSession
from provincial_node.context import runtime
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD
from tests.provincial.web.conftest import csrf_of, login, post
from tests.software_authenticator import SoftwareAuthenticator

ORIGIN = "http://localhost:8100"  # the default TMIS_WEBAUTHN_ORIGINS of a node on 127.0.0.1:8100


@pytest.fixture(scope="module")
def keyed(site):
    """The province requires keys of system and information administrators; the county's administrator has one
    (enrolled with a code from the city's administrator, made here for the purpose)."""
    rt = runtime(site.app)
    key = SoftwareAuthenticator(ORIGIN)
    site_cfg = sf.WebAuthnSite(rt.config.webauthn_rp_id, "tmis", rt.config.webauthn_origins)
    with session_scope(rt.session_factory) as db:
        sf.set_required_roles(ctx(db), ("sysadmin", "infoadmin"))
        city = accounts.create_account(
            ctx(db), username="city_admin", real_name="city_admin", unit=db.get(Unit, site.ids["440100"]),
            role="sysadmin", password=PASSWORD,
        )  # fmt: skip
        county = db.scalar(select(Account).where(Account.username == "county_admin"))
        code = sf.issue_enrolment_code(ctx(db, actor_for(db, city)), county.id)
        options, challenge = sf.registration_options(ctx(db, actor_for(db, county)), county, code, site_cfg)
        sf.finish_registration(
            ctx(db, actor_for(db, county)), county, code, key.create(options), challenge, site_cfg, "k"
        )
    yield key
    with session_scope(rt.session_factory) as db:
        sf.set_required_roles(ctx(db), ())


def _json(client, path: str, body: dict, token_page: str):
    token = csrf_of(client.get(token_page).text)
    return client.post(path, data=json.dumps(body), content_type="application/json", headers={"X-CSRFToken": token})


def _key_check(client, key: SoftwareAuthenticator):
    options = _json(client, "/login/key/options", {}, "/login/key").json
    return _json(client, "/login/key/verify", {"credential": key.get(options), "next": "/"}, "/login/key")


def test_an_account_without_its_key_is_held_until_it_enrols_with_the_code_from_above(site, keyed):
    clerk = site.client("school_info")
    r = clerk.get("/teachers")
    assert r.status_code == 302 and "/login/key" in r.headers["Location"]
    assert clerk.get("/login/key").headers["Location"].startswith("/account/security-key")
    page = clerk.get("/account/security-key").text
    assert "须使用安全密钥登录" in page and "登记码" in page
    # the county's administrator, after its own key check, issues the code on the accounts page
    county = site.client("county_admin")
    assert county.get("/accounts").status_code == 302  # held at the key check too
    assert _key_check(county, keyed).json == {"ok": True, "next": "/"}
    listing = county.get("/accounts").text
    assert re.search(r'data-key-state="school_info">\s*<span class="badge bg-danger">须登记，未登记', listing)
    school_info_id = _account_id(site, "school_info")
    r = post(county, f"/accounts/{school_info_id}/enrolment-code", token_from="/accounts")
    flashed = county.get(r.headers["Location"]).text
    code = re.search(r"登记码：([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})", flashed).group(1)
    # the clerk enrols a key with it and gets ten recovery codes
    key = SoftwareAuthenticator(ORIGIN)
    wrong = _json(clerk, "/account/security-key/options", {"code": "AAAA-BBBB-CCCC"}, "/account/security-key")
    assert wrong.status_code == 422 and "登记码无效" in wrong.json["message"]
    options = _json(clerk, "/account/security-key/options", {"code": code}, "/account/security-key").json
    done = _json(
        clerk,
        "/account/security-key/verify",
        {"code": code, "name": "我的U盾", "credential": key.create(options["options"])},
        "/account/security-key",
    ).json
    assert done["ok"] and len(done["recovery_codes"]) == 10
    assert clerk.get("/teachers").status_code == 200  # the enrolment was its key check


def test_sign_in_with_the_key_or_a_recovery_code(site, keyed):
    clerk = site.client("county_admin")
    assert clerk.get("/").status_code == 302
    # the same credential id with another private key: a forged answer
    forged = {
        k: dataclasses.replace(c, key=ec.generate_private_key(ec.SECP256R1())) for k, c in keyed.credentials.items()
    }
    stranger = SoftwareAuthenticator(ORIGIN, forged)
    bad = _key_check(clerk, stranger)
    assert bad.status_code == 401 and not bad.json["ok"]
    assert clerk.get("/").status_code == 302
    assert _key_check(clerk, keyed).json["ok"] and clerk.get("/").status_code == 200


def test_an_export_needs_a_recent_key_check(site, keyed):
    county = site.client("county_admin")
    _key_check(county, keyed)
    info = site.client("school2_info")  # a school's information administrator, with a code from the county
    code = _issue(site, county, "school2_info")
    key = SoftwareAuthenticator(ORIGIN)
    options = _json(info, "/account/security-key/options", {"code": code}, "/account/security-key").json
    body = {"code": code, "name": "k", "credential": key.create(options["options"])}
    _json(info, "/account/security-key/verify", body, "/account/security-key")
    form = {"unit_id": str(site.ids["2144000002"]), "format": "csv", "groups": "JBXX", "reason": "年度核对"}
    r = post(info, "/exports", form, token_from="/imports-exports")
    assert r.status_code == 200 and r.mimetype == "text/csv"  # just checked
    _age_key_check(site, "school2_info", minutes=30)
    r = post(info, "/exports", form, token_from="/imports-exports")
    assert r.status_code == 302 and "/login/key" in r.headers["Location"] and "step_up=1" in r.headers["Location"]
    assert "再次验证安全密钥" in info.get(r.headers["Location"]).text
    assert _key_check(info, key).json["ok"]
    assert post(info, "/exports", form, token_from="/imports-exports").mimetype == "text/csv"


def test_api_tokens_of_key_users_come_from_the_page(site, keyed):
    c = site.app.test_client()
    r = c.post("/api/v1/auth/login", json={"username": "county_admin", "password": PASSWORD})
    assert r.status_code == 403 and r.json["code"] == "second_factor_required"
    assert r.json["details"]["reason"] == "api_token_from_page"
    county = site.client("county_admin")
    _key_check(county, keyed)
    page = post(county, "/account/api-token", token_from="/account/security-key").text
    token = re.search(r"data-api-token>([^<]+)<", page).group(1)
    me = c.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    r = c.post("/api/v1/auth/login", json={"username": "county_query", "password": PASSWORD})
    assert r.status_code == 200  # a role the province does not require a key of


def _account_id(site, username: str) -> int:
    with session_scope(runtime(site.app).session_factory) as db:
        return db.scalar(select(Account.id).where(Account.username == username))


def _issue(site, county_client, username: str) -> str:
    r = post(county_client, f"/accounts/{_account_id(site, username)}/enrolment-code", token_from="/accounts")
    return re.search(r"登记码：([A-Z0-9-]{14})", county_client.get(r.headers["Location"]).text).group(1)


def _age_key_check(site, username: str, minutes: int) -> None:
    with session_scope(runtime(site.app).session_factory) as db:
        for ws in db.scalars(select(WebSession).where(WebSession.account_id == _account_id(site, username))):
            if ws.second_factor_at is not None:
                ws.second_factor_at -= dt.timedelta(minutes=minutes)


def test_a_recovery_code_stands_in_for_the_key_once(site, keyed):
    county = site.client("county_admin")
    _key_check(county, keyed)
    with session_scope(runtime(site.app).session_factory) as db:
        account = db.scalar(select(Account).where(Account.username == "county_admin"))
        codes = sf.new_recovery_codes(ctx(db), account)
    again = site.app.test_client()
    login(again, "county_admin")
    r = post(again, "/login/recovery", {"code": codes[0], "next": "/teachers"}, token_from="/login/key")
    assert r.status_code == 302 and r.headers["Location"] == "/teachers"
    assert again.get("/accounts").status_code == 200
    third = site.app.test_client()
    login(third, "county_admin")
    r = post(third, "/login/recovery", {"code": codes[0]}, token_from="/login/key")
    assert third.get(r.headers["Location"]).text.count("恢复码不正确或已使用") == 1
    assert third.get("/accounts").status_code == 302
