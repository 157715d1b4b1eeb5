"""The second factor's services on both databases, with a software authenticator that answers as a FIDO2 key
would (tests/software_authenticator.py): enrolment supervised by the unit directly above, key checks, a cloned
key's counter, recovery codes, revocation, who needs a key, and step-up."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from common.errors import AuthError, PermissionDeniedError, ValidationError
from provincial_node.accounts import second_factor as sf
from provincial_node.accounts.models import Account, SecondFactorCode
from provincial_node.audit_trail.models import AuditEvent
from tests.software_authenticator import SoftwareAuthenticator

SITE = sf.WebAuthnSite("localhost", "tmis", ("http://localhost:8144",))


def _account(province, name: str) -> Account:
    return province.session.get(Account, province.actor(name).account_id)


def _enrol(province, name: str, issuer: str, key: SoftwareAuthenticator):
    code = sf.issue_enrolment_code(province.ctx(issuer), province.actor(name).account_id)
    account = _account(province, name)
    ctx = province.ctx(name)
    options, challenge = sf.registration_options(ctx, account, code, SITE)
    return sf.finish_registration(ctx, account, code, key.create(options), challenge, SITE, "U盾")


def _check(province, name: str, key: SoftwareAuthenticator, **kw):
    account = _account(province, name)
    ctx = province.ctx(name)
    options, challenge = sf.authentication_options(ctx, account, SITE)
    return sf.finish_authentication(ctx, account, key.get(options, **kw), challenge, SITE)


def test_the_unit_directly_above_issues_the_enrolment_code(province):
    school_info = province.actor("school1_info").account_id
    code = sf.issue_enrolment_code(province.ctx("tianhe_admin"), school_info)  # the county above the school
    assert len(code.replace("-", "")) == 12
    stored = province.session.query(SecondFactorCode).filter_by(account_id=school_info).one()
    assert code.replace("-", "") not in stored.code_hash  # only the hash is kept
    for issuer in ("school1_admin", "city_admin", "province_admin", "tianhe_info"):
        with pytest.raises(PermissionDeniedError):  # its own unit, two levels up, not a system administrator
            sf.issue_enrolment_code(province.ctx(issuer), school_info)
    with pytest.raises(PermissionDeniedError):  # the province's own accounts get theirs from the operator
        sf.issue_enrolment_code(province.ctx("province_admin"), province.actor("province_info").account_id)
    assert sf.issue_enrolment_code(province.ctx(None), province.actor("province_info").account_id)


def test_enrol_then_check_with_the_key(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    enrolled, codes = _enrol(province, "school1_info", "tianhe_admin", key)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert _check(province, "school1_info", key).id == enrolled.id
    assert enrolled.sign_count == 1
    actions = {e.action for e in province.session.query(AuditEvent)}
    assert {"second_factor.enrolment_code", "second_factor.enrol", "second_factor.use"} <= actions


def test_a_used_or_wrong_enrolment_code_is_refused(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    code = sf.issue_enrolment_code(province.ctx("tianhe_admin"), province.actor("school1_info").account_id)
    account = _account(province, "school1_info")
    with pytest.raises(ValidationError) as e:
        sf.registration_options(province.ctx("school1_info"), account, "WRON-GCOD-EXXX", SITE)
    assert e.value.errors[0].field == "code"
    ctx = province.ctx("school1_info")
    options, challenge = sf.registration_options(ctx, account, code, SITE)
    sf.finish_registration(ctx, account, code, key.create(options), challenge, SITE, "k")
    with pytest.raises(ValidationError):
        sf.registration_options(province.ctx("school1_info"), account, code, SITE)  # one use only
    # a code expires
    late = sf.issue_enrolment_code(province.ctx("tianhe_admin"), province.actor("school2_info").account_id)
    later = province.ctx("school2_info", now=province.ctx().now + sf.ENROLMENT_VALID + dt.timedelta(minutes=1))
    with pytest.raises(ValidationError):
        sf.registration_options(later, _account(province, "school2_info"), late, SITE)


def test_an_answer_from_another_site_or_a_foreign_key_is_refused_and_audited(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    _enrol(province, "school1_info", "tianhe_admin", key)
    with pytest.raises(AuthError):
        _check(province, "school1_info", key, origin="https://phishing.example")
    stranger = SoftwareAuthenticator("http://localhost:8144")
    _enrol(province, "school2_info", "tianhe_admin", stranger)
    account = _account(province, "school1_info")
    options, challenge = sf.authentication_options(province.ctx("school1_info"), account, SITE)
    options["allowCredentials"] = [{"id": c, "type": "public-key"} for c in _ids(stranger)]
    with pytest.raises(AuthError):  # school2's key is not school1_info's
        sf.finish_authentication(province.ctx("school1_info"), account, stranger.get(options), challenge, SITE)
    refused = province.session.query(AuditEvent).filter_by(action="second_factor.refused").count()
    assert refused == 2


def _ids(key: SoftwareAuthenticator) -> list[str]:
    from tests.software_authenticator import b64url

    return [b64url(c) for c in key.credentials]


def test_a_cloned_key_is_caught_by_its_counter(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    _enrol(province, "school1_info", "tianhe_admin", key)
    _check(province, "school1_info", key)
    _check(province, "school1_info", key)
    clone = dataclasses.replace(
        key, credentials={k: dataclasses.replace(c, sign_count=0) for k, c in key.credentials.items()}
    )
    with pytest.raises(AuthError):  # the copy answers with a counter below the one last seen
        _check(province, "school1_info", clone)


def test_recovery_codes_work_once_and_new_ones_replace_the_old(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    _key, codes = _enrol(province, "school1_info", "tianhe_admin", key)
    account = _account(province, "school1_info")
    sf.use_recovery_code(province.ctx("school1_info"), account, codes[0].lower())  # case and dashes do not matter
    with pytest.raises(AuthError):
        sf.use_recovery_code(province.ctx("school1_info"), account, codes[0])
    fresh = sf.new_recovery_codes(province.ctx("school1_info"), account)
    with pytest.raises(AuthError):
        sf.use_recovery_code(province.ctx("school1_info"), account, codes[1])
    sf.use_recovery_code(province.ctx("school1_info"), account, fresh[0])


def test_revoked_keys_stop_working_and_only_the_owner_or_the_unit_above_revoke(province):
    key = SoftwareAuthenticator("http://localhost:8144")
    enrolled, _codes = _enrol(province, "school1_info", "tianhe_admin", key)
    with pytest.raises(PermissionDeniedError):
        sf.revoke_key(province.ctx("school1_admin"), enrolled.id, "丢失")
    with pytest.raises(ValidationError):
        sf.revoke_key(province.ctx("tianhe_admin"), enrolled.id, "")
    sf.revoke_key(province.ctx("tianhe_admin"), enrolled.id, "密钥丢失")
    assert sf.active_keys(province.session, province.actor("school1_info").account_id) == []


def test_who_needs_a_key_is_the_province_setting_and_having_one(province):
    account = _account(province, "school1_info")
    ctx = province.ctx("school1_info")
    assert not sf.required(ctx, account)  # a node without the setting: nobody yet
    sf.set_required_roles(province.ctx(None), ("sysadmin", "infoadmin"))
    assert sf.required(ctx, account) and not sf.required(ctx, _account(province, "tianhe_query"))
    with pytest.raises(ValidationError):
        sf.set_required_roles(province.ctx(None), ("nobody",))
    sf.set_required_roles(province.ctx(None), ())
    _enrol(province, "tianhe_query", "city_admin", SoftwareAuthenticator("http://localhost:8144"))
    assert sf.required(ctx, _account(province, "tianhe_query"))  # whoever has a key uses it


def test_step_up_needs_a_recent_key_check(province):
    actor = province.actor("tianhe_info")
    now = province.ctx().now
    with_key = dataclasses.replace(actor, second_factor_required=True, second_factor_at=now - dt.timedelta(minutes=3))
    sf.require_fresh(province.ctx(with_key, now=now), "an export")
    stale = dataclasses.replace(with_key, second_factor_at=now - dt.timedelta(minutes=30))
    with pytest.raises(sf.SecondFactorRequiredError) as e:
        sf.require_fresh(province.ctx(stale, now=now), "an export")
    assert e.value.code == "second_factor_required" and e.value.http_status == 403
    sf.require_fresh(province.ctx(actor, now=now), "an export")  # an account without a key: nothing to step up
