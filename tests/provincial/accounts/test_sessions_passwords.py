"""Accounts and sessions (issue 16, item 3) on SQLite and PostgreSQL: password rules, one-time reset passwords,
the end of every session on a lock-out / reset / disable / role change, token lifetimes, throttling with one
answer, the login log, real-name data, password expiry."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from common.db import utcnow
from common.errors import AuthError, PermissionDeniedError, ValidationError
from provincial_node.accounts import accounts, passwords, tokens
from provincial_node.accounts.models import Account
from provincial_node.audit_trail import search, trail
from provincial_node.audit_trail.models import LoginEvent
from provincial_node.context import Settings
from tests.factories import resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD

SETTINGS = Settings()
REAL = {"id_number": resident_id("440106", "19800101", "551"), "phone": "13800138000"}


def _reasons(exc: pytest.ExceptionInfo) -> list[str]:
    return [e["reason_en"] for e in exc.value.details["errors"]]


@pytest.mark.parametrize("weak", ["Passw0rd", "Aa123456"])
def test_the_passwords_of_the_issue_are_refused(weak):
    with pytest.raises(ValidationError) as exc:
        passwords.check_password(weak)
    assert any("characters" in r for r in _reasons(exc)) and any("common" in r for r in _reasons(exc))


@pytest.mark.parametrize("weak", ["Password123", "Qwertyuiop1", "Iloveyou123", "1Qaz2wsx3edc", "Woaini1314"])
def test_long_enough_but_common_passwords_are_refused(weak):
    """Long enough, three classes — and on the common-password list (compared in lower case)."""
    with pytest.raises(ValidationError) as exc:
        passwords.check_password(weak)
    assert _reasons(exc) == ["a common password, easily guessed"]


def test_password_rules_name_every_reason():
    with pytest.raises(ValidationError) as exc:
        passwords.check_password("school1_info-x", username="school1_info")
    assert "must not contain the username" in _reasons(exc)
    with pytest.raises(ValidationError) as exc:
        passwords.check_password("Aa1-" + "x" * 200)
    assert any("to 128 characters" in r for r in _reasons(exc))  # bounded: no hashing of a megabyte
    assert "password" in {e["field"] for e in exc.value.details["errors"]}
    passwords.check_password("Teacher-pass-2026", username="school1_info")
    assert "passw0rd" in passwords.common_passwords() and len(passwords.common_passwords()) > 19_000


def test_a_new_password_may_not_be_one_of_the_last_five(province):
    s = province.session
    c = province.ctx("school1_info")
    history = [PASSWORD, "Second-pass-2026", "Third-pass-2026", "Fourth-pass-2026", "Fifth-pass-2026"]
    for old, new in itertools.pairwise(history):
        accounts.change_password(c, old, new)
    with pytest.raises(ValidationError) as exc:
        accounts.change_password(c, history[-1], PASSWORD)  # the first one, four changes ago
    assert any("last 5" in r for r in _reasons(exc))
    accounts.change_password(c, history[-1], "Sixth-pass-2026")
    assert s.get(Account, province.actor("school1_info").account_id).must_change_password is False


def test_reset_by_the_unit_above_gives_a_one_time_password_and_ends_sessions(province):
    s = province.session
    school_admin = province.actor("school1_admin").account_id
    token, _ = accounts.login(ctx(s, None), "school1_admin", PASSWORD)
    tokens.authenticate(s, token)
    acc, otp = accounts.reset_password(province.ctx("tianhe_admin"), school_admin, "忘记密码")
    assert acc.must_change_password and len(otp) >= 10
    passwords.check_password(otp)  # the one-time password meets the rules itself
    with pytest.raises(AuthError):
        tokens.authenticate(s, token)  # the reset ended every session of the account
    with pytest.raises(AuthError):
        accounts.login(ctx(s, None), "school1_admin", PASSWORD)
    _t, again = accounts.login(ctx(s, None), "school1_admin", otp)
    assert again.must_change_password  # the API lets it do nothing but change the password
    assert any(e.action == "account.reset_password" for e in trail.query(province.ctx("tianhe_admin")))


def test_a_county_system_administrator_cannot_reset_a_school_information_administrator(province):
    """Issue 16: a county's system administrator could reset a school information administrator's password,
    log in as them and work as them. Below its own unit it manages system administrators only."""
    target = province.actor("school1_info").account_id
    with pytest.raises(PermissionDeniedError):
        accounts.reset_password(province.ctx("tianhe_admin"), target, "试图冒用")
    accounts.reset_password(province.ctx("school1_admin"), target, "本校管理员重置")


def test_a_token_issued_before_a_lockout_stops_working(province):
    s = province.session
    token, acc = accounts.login(ctx(s, None), "school2_info", PASSWORD)
    tokens.authenticate(s, token)
    for _ in range(SETTINGS.login_max_failures):
        with pytest.raises(AuthError):
            accounts.login(ctx(s, None), "school2_info", "Wrong-pass-2026")
    with pytest.raises(AuthError):
        tokens.authenticate(s, token)
    assert acc.session_generation >= 1


@pytest.mark.parametrize("action", ["disable", "set_role"])
def test_disable_and_role_change_end_every_session(province, action):
    s = province.session
    token, acc = accounts.login(ctx(s, None), "school3_info", PASSWORD)
    tokens.authenticate(s, token)
    admin = province.ctx("province_admin")
    school3_admin = accounts.create_account(
        ctx(s, None),
        username="s3_admin",
        real_name="管理员",
        unit=province.units["3444000003"],
        role="sysadmin",
        password=PASSWORD,
    )
    from provincial_node.accounts.access import actor_for

    c = province.ctx(actor_for(s, school3_admin))
    if action == "disable":
        accounts.set_account_state(c, acc.id, "disable", "离职")
    else:
        accounts.change_role(c, acc.id, "query", "岗位调整")
        assert acc.role == "query"
    with pytest.raises(AuthError):
        tokens.authenticate(s, token)
    assert admin.user.role == "sysadmin"


def test_web_sessions_honour_the_session_generation_and_lifetimes(province):
    s = province.session
    acc = s.get(Account, province.actor("school1_info").account_id)
    now = utcnow()
    started = now - dt.timedelta(minutes=5)
    tokens.session_is_current(s, acc.id, acc.session_generation, started_at=started, last_seen=now, now=now)
    with pytest.raises(AuthError):  # idle too long
        tokens.session_is_current(
            s, acc.id, acc.session_generation, started_at=started, last_seen=now - SETTINGS.token_idle, now=now
        )
    with pytest.raises(AuthError):  # past the absolute lifetime
        tokens.session_is_current(
            s, acc.id, acc.session_generation, started_at=now - SETTINGS.token_lifetime, last_seen=now, now=now
        )
    accounts.end_sessions(s, acc)
    with pytest.raises(AuthError):  # a lock-out, reset, disable or role change since the login
        tokens.session_is_current(s, acc.id, acc.session_generation - 1, started_at=started, last_seen=now, now=now)


def test_tokens_expire_when_idle_and_after_their_lifetime(province):
    s = province.session
    now = utcnow()
    token, _ = accounts.login(ctx(s, None, now=now), "school1_info", PASSWORD)
    tokens.authenticate(s, token, now=now + SETTINGS.token_idle - dt.timedelta(seconds=5))  # used: idle restarts
    later = now + SETTINGS.token_idle + dt.timedelta(minutes=1)
    tokens.authenticate(s, token, now=later)
    with pytest.raises(AuthError):
        tokens.authenticate(s, token, now=later + SETTINGS.token_idle + dt.timedelta(seconds=1))
    fresh, _ = accounts.login(ctx(s, None, now=now), "school1_info", PASSWORD)
    t = now
    while t + SETTINGS.token_idle / 2 < now + SETTINGS.token_lifetime:
        t += SETTINGS.token_idle / 2
        if t < now + SETTINGS.token_lifetime:
            tokens.authenticate(s, fresh, now=t)  # kept busy, still ends at the absolute lifetime
    with pytest.raises(AuthError):
        tokens.authenticate(s, fresh, now=now + SETTINGS.token_lifetime)


def test_unknown_disabled_and_wrong_password_get_one_answer(province):
    s = province.session
    target = province.actor("school1_info").account_id
    accounts.set_account_state(province.ctx("school1_admin"), target, "disable", "离职")
    answers = []
    for username, password in (("nobody_here", PASSWORD), ("school1_info", PASSWORD), ("school2_info", "Wrong-1x")):
        with pytest.raises(AuthError) as exc:
            accounts.login(ctx(s, None), username, password)
        answers.append((type(exc.value), exc.value.code, exc.value.http_status, exc.value.message, exc.value.details))
    assert answers[0] == answers[1] == answers[2]


def test_failed_logins_are_in_the_login_log_and_lock_unknown_usernames_too(province):
    s = province.session
    for _ in range(SETTINGS.login_max_failures):
        with pytest.raises(AuthError):
            accounts.login(ctx(s, None), "ghost", "Wrong-pass-2026", address="10.0.0.7")
    with pytest.raises(accounts.AccountLockedError):  # like a real account: no way to tell it does not exist
        accounts.login(ctx(s, None), "ghost", "Wrong-pass-2026", address="10.0.0.7")
    accounts.login(ctx(s, None), "school1_info", PASSWORD, address="10.0.0.8")
    events = s.scalars(select(LoginEvent).order_by(LoginEvent.id)).all()
    assert [e.outcome for e in events if e.username == "ghost"] == ["failed"] * SETTINGS.login_max_failures + ["locked"]
    assert events[-1].outcome == "success" and events[-1].address == "10.0.0.8"
    seen = search.login_events(province.ctx("province_admin")).rows
    assert {"ghost", "school1_info"} <= {e.username for e in seen}
    mine = search.login_events(province.ctx("school2_info")).rows  # everyone else sees only their own
    assert all(e.account_id == province.actor("school2_info").account_id for e in mine)


def test_login_attempts_are_throttled_per_address_across_usernames(province):
    s = province.session
    for i in range(SETTINGS.login_max_per_address):
        with pytest.raises(AuthError):
            accounts.login(ctx(s, None), f"user{i}", "Wrong-pass-2026", address="192.0.2.1")
    with pytest.raises(accounts.LoginThrottledError):
        accounts.login(ctx(s, None), "school1_info", PASSWORD, address="192.0.2.1")
    accounts.login(ctx(s, None), "school1_info", PASSWORD, address="192.0.2.2")  # another address is not held up


def test_an_expired_password_must_be_changed(province):
    s = province.session
    acc = s.get(Account, province.actor("school1_info").account_id)
    accounts.change_password(province.ctx("school1_info"), PASSWORD, "Renewed-pass-2026")
    _t, again = accounts.login(ctx(s, None), "school1_info", "Renewed-pass-2026")
    assert not again.must_change_password
    later = utcnow() + SETTINGS.password_max_age + dt.timedelta(days=1)
    _t, again = accounts.login(ctx(s, None, now=later), "school1_info", "Renewed-pass-2026")
    assert again.must_change_password and again.id == acc.id


def test_real_name_data_is_required_and_checked(province):
    s, u = province.session, province.units
    base = dict(username="new_info", real_name="新信息员", unit=u["2144000001"], role="infoadmin", password=PASSWORD)
    with pytest.raises(ValidationError) as exc:
        accounts.create_account(province.ctx("school1_admin"), **base)
    assert {e["field"] for e in exc.value.details["errors"]} == {"id_number", "phone"}
    with pytest.raises(ValidationError) as exc:
        accounts.create_account(
            province.ctx("school1_admin"), **base, id_number="440106198001015511", phone="12345", email="x@"
        )
    assert {e["field"] for e in exc.value.details["errors"]} == {"id_number", "phone", "email"}
    acc = accounts.create_account(province.ctx("school1_admin"), **base, **REAL, email="info@school.cn")
    assert acc.id_number == REAL["id_number"] and acc.email == "info@school.cn"
    assert s.scalar(select(Account.id).where(Account.id_index == REAL["id_number"])) == acc.id


def test_the_unknown_username_hash_is_made_by_the_app_not_by_every_process(monkeypatch, tmp_path):
    """Importing the module costs no Argon2 hash (every CLI command and sync round imports it); the app makes the
    hash at start-up, so the first login with an unknown username costs what any other does."""
    import subprocess
    import sys

    from common.protection import DataKeys
    from provincial_node.app import create_app
    from provincial_node.config import config_from_env

    code = "import provincial_node.accounts.passwords as p; print(p._DUMMY_HASH)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "None\n"

    monkeypatch.setattr(passwords, "_DUMMY_HASH", None)
    env = {"TMIS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite'}", "TMIS_DATA_DIR": str(tmp_path)}
    config = config_from_env({**env, "TMIS_PROVINCE_CODE": "44"}, testing=True)
    DataKeys.generate().save(config.data_key_file)
    create_app(config)
    made = passwords._DUMMY_HASH
    assert made is not None and passwords.dummy_hash() is made  # made once, at start-up
    assert passwords.password_matches(made, "tmis: same cost for unknown usernames")
