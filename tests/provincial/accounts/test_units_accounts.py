"""Units and accounts on SQLite and PostgreSQL: import, scope, passwords, lock-out, tokens, audit."""

from __future__ import annotations

import datetime as dt

import pytest

from common.db import utcnow
from common.errors import AuthError, ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts import accounts, passwords, tokens, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import Settings
from tests.factories import resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, UNITS_CSV

SETTINGS = Settings()
REAL_NAME = {"id_number": resident_id("440106", "19800101", "551"), "phone": "13800138000"}


def test_tree_paths_and_supervisors(province):
    u = province.units
    assert u["2144000001"].path.startswith(u["440106"].path)
    assert u["440106"].path.startswith(u["440100"].path)
    assert u["2144000001"].supervisor_id == u["440106"].id


def test_reimport_changes_nothing(province):
    assert units.import_units_csv(province.ctx(None), UNITS_CSV) == {"created": 0, "unchanged": 7}


def test_bad_rows_are_reported_and_nothing_is_written(province):
    bad = (
        "code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code\n"
        "440111,白云区教育局,county,440100,,,,,\n"  # good row
        "2144000009,新学校,school,440111,,342,,,440111\n"  # 学校标识码 class 21 vs 办学类型 342
        "9999,坏单位,county,440100,,,,,\n"  # not a division code
        "440113,番禺区教育局,city,440000,,,,,\n"
    )  # a county code given as a city
    with pytest.raises(ValidationError) as exc:
        units.import_units_csv(province.ctx(None), bad)
    rows = {(e["row"], e["column"]) for e in exc.value.details["errors"]}
    assert (3, "code") in rows and (4, "division_code") in rows and (5, "division_code") in rows
    assert province.session.query(Unit).filter(Unit.code == "440111").count() == 0


HEADER = "code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code\n"


def _errors_of(province, text):
    with pytest.raises(ValidationError) as exc:
        units.import_units_csv(province.ctx(None), HEADER + text)
    return {(e["row"], e["column"]): e for e in exc.value.details["errors"]}


def test_an_unknown_or_retired_division_code_is_refused(province):
    """The trial's 330199 (a made-up county) was accepted silently; now it and a retired code are refused."""
    errors = _errors_of(
        province,
        "440199,不存在区教育局,county,440100,,,,,\n"  # well-formed, in no division list
        "440121,撤销县教育局,county,440100,,,,,\n",  # 花县, retired in 1993
    )
    assert "不在 GB/T 2260 中" in errors[(2, "division_code")]["reason_zh"]
    assert "撤销" in errors[(3, "division_code")]["reason_zh"]
    assert province.session.query(Unit).filter(Unit.code == "440199").count() == 0


def test_a_division_outside_its_parent_bureau_is_refused(province):
    errors = _errors_of(province, "440305,南山区教育局,county,440100,,,,,\n")  # 深圳's district under 广州
    assert "不在上级单位的区划 440100 之内" in errors[(2, "division_code")]["reason_zh"]


def test_a_school_cannot_be_supervised_by_a_bureau_outside_its_own_chain(province):
    errors = _errors_of(province, "2144000009,新学校,school,440106,,211,111,,440105\n")  # 海珠 supervises 天河's school
    assert "上级单位" in errors[(2, "supervisor_code")]["reason_zh"]
    # its own county or the city above it may supervise it (东莞-style city supervision), also within one file
    ok = units.import_units_csv(
        province.ctx(None),
        HEADER + "440111,白云区教育局,county,440100,,,,,\n2144000010,白云小学,school,440111,,211,111,,440100\n",
    )
    assert ok["created"] == 2


def test_unit_names_refuse_control_characters(province):
    errors = _errors_of(province, "440111,白云区\x07教育局,county,440100,,,,,\n")
    assert "控制字符" in errors[(2, "name")]["reason_zh"]


def test_division_supplement_and_check_known():
    from common.divisions import DivisionCodeError, check_known

    check_known("330114")  # 钱塘区 (2021), missing from the bundled data: supplemented
    check_known("659001")  # 石河子 (兵团 city under 新疆's 90 prefix)
    for bad in ("330199", "330103", "9999", "990100"):
        with pytest.raises(DivisionCodeError):
            check_known(bad)


def test_password_strength():
    for weak in ("short1A", "alllowercase1", "NoDigitsHere"):
        with pytest.raises(ValidationError):
            passwords.check_password_strength(weak)
    passwords.check_password_strength("Good-pass1")


def test_one_system_administrator_per_unit(province):
    with pytest.raises(ConflictError):
        accounts.create_account(
            province.ctx("tianhe_admin"),
            username="second_admin",
            real_name="二号",
            unit=province.units["440106"],
            role="sysadmin",
            password=PASSWORD,
            **REAL_NAME,
        )


def test_who_may_create_accounts(province):
    s, u = province.session, province.units
    accounts.create_account(
        ctx(s, province.actor("tianhe_admin")),
        username="school2_admin",
        real_name="校管理员",
        unit=u["2144000002"],
        role="sysadmin",
        password=PASSWORD,
        **REAL_NAME,
    )
    with pytest.raises(PermissionDeniedError):  # not the school's query users: that is the school's own admin
        accounts.create_account(
            ctx(s, province.actor("tianhe_admin")),
            username="query_user",
            real_name="查询",
            unit=u["2144000002"],
            role="query",
            password=PASSWORD,
            **REAL_NAME,
        )
    with pytest.raises(NotFoundError):  # another county's units are not even visible
        accounts.create_account(
            ctx(s, province.actor("tianhe_admin")),
            username="haizhu_x",
            real_name="海珠",
            unit=u["3444000003"],
            role="infoadmin",
            password=PASSWORD,
            **REAL_NAME,
        )


def test_login_lockout_unlock_and_tokens(province):
    s = province.session
    token, acc = accounts.login(ctx(s, None), "school1_info", PASSWORD)
    assert tokens.authenticate(s, token).id == acc.id
    for _ in range(SETTINGS.login_max_failures):
        with pytest.raises(AuthError):
            accounts.login(ctx(s, None), "school1_info", "wrong-Pass1")
    with pytest.raises(accounts.AccountLockedError):
        accounts.login(ctx(s, None), "school1_info", PASSWORD)  # even the right password, while locked
    # the school's own sysadmin (or the one above) unlocks, with a reason in the audit trail
    accounts.set_account_state(ctx(s, province.actor("school1_admin")), acc.id, "unlock", "忘记密码后多次尝试")
    accounts.login(ctx(s, None), "school1_info", PASSWORD)
    later = utcnow() + SETTINGS.login_lock + dt.timedelta(minutes=1)
    accounts.set_account_state(ctx(s, province.actor("school1_admin")), acc.id, "disable", "离职")
    with pytest.raises(AuthError):
        tokens.authenticate(s, token)  # disabling revokes tokens
    accounts.set_account_state(ctx(s, province.actor("school1_admin")), acc.id, "restore", "误操作")
    token2, _ = accounts.login(ctx(s, None, now=later), "school1_info", PASSWORD)
    with pytest.raises(AuthError):  # expired
        tokens.authenticate(s, token2, now=later + SETTINGS.token_lifetime + dt.timedelta(seconds=1))
    tokens.logout(s, token2)
    with pytest.raises(AuthError):
        tokens.authenticate(s, token2, now=later)
    actions = [e.action for e in trail.query(ctx(s, province.actor("tianhe_admin")))]
    assert {"account.locked", "account.unlock", "account.disable", "account.restore"} <= set(actions)


def test_lockout_expires_by_itself(province):
    s = province.session
    for _ in range(SETTINGS.login_max_failures):
        with pytest.raises(AuthError):
            accounts.login(ctx(s, None), "school2_info", "wrong-Pass1")
    accounts.login(ctx(s, None, now=utcnow() + SETTINGS.login_lock + dt.timedelta(seconds=5)), "school2_info", PASSWORD)


def test_unlock_only_by_own_unit_or_the_unit_above(province):
    s = province.session
    target = province.actor("school3_info").account_id
    with pytest.raises(NotFoundError):  # another county's admin cannot even see the account
        accounts.set_account_state(ctx(s, province.actor("tianhe_admin")), target, "unlock", "x")
    with pytest.raises(PermissionDeniedError):  # two levels up is not "the unit above"
        accounts.set_account_state(ctx(s, province.actor("province_admin")), target, "unlock", "x")


def test_password_change_clears_first_login_flag(province):
    s = province.session
    _t, acc = accounts.login(ctx(s, None), "school1_info", PASSWORD)
    assert acc.must_change_password
    with pytest.raises(ValidationError):
        accounts.change_password(province.ctx("school1_info"), PASSWORD, "weak")
    accounts.change_password(province.ctx("school1_info"), PASSWORD, "Another-Pass9")
    assert not acc.must_change_password


def test_audit_trail_is_scoped(province):
    s = province.session
    accounts.set_account_state(
        ctx(s, province.actor("tianhe_admin")), province.actor("school1_admin").account_id, "unlock", "测试"
    )
    haizhu = actor_for(
        s,
        accounts.create_account(
            ctx(s, province.actor("city_admin")),
            username="haizhu_admin",
            real_name="海珠管理员",
            unit=province.units["440105"],
            role="sysadmin",
            password=PASSWORD,
            **REAL_NAME,
        ),
    )
    assert any(e.action == "account.unlock" for e in trail.query(ctx(s, province.actor("tianhe_admin"))))
    assert not any(e.action == "account.unlock" for e in trail.query(ctx(s, haizhu)))
