"""The province registry: enrolment with a one-time token, key rotation and revocation, each a new trust
version announced to every enrolled province."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from common.errors import AuthError, ConflictError, NotFoundError, ValidationError
from national_node.inbox import routing
from national_node.inbox.models import InboxMessage
from national_node.ledger import ledger
from national_node.provinces import provinces
from national_node.registry import registry
from tests.protocol.simulator import fixed_signer


def _b64(signer) -> str:
    return base64.b64encode(signer.public.raw).decode()


def test_an_enrolment_token_works_once_and_only_for_its_province(nation):
    s = nation.session
    token = provinces.issue_token(s, "44")
    with pytest.raises(AuthError):
        registry.enrol(s, nation.keys, nation.origin, "11", token, _b64(fixed_signer("a")))
    trust = registry.enrol(s, nation.keys, nation.origin, "44", token, _b64(fixed_signer("a")))
    assert fixed_signer("a").keyid in trust.province_keys("44").keys
    with pytest.raises(AuthError):
        registry.enrol(s, nation.keys, nation.origin, "44", token, _b64(fixed_signer("b")))


def test_a_province_code_and_a_public_key_are_checked(nation):
    with pytest.raises(ValidationError) as exc:
        provinces.issue_token(nation.session, "99")
    assert exc.value.details["errors"][0]["field"] == "province"
    token = provinces.issue_token(nation.session, "44")
    with pytest.raises(ValidationError) as exc:
        registry.enrol(nation.session, nation.keys, nation.origin, "44", token, "not base64 of a key")
    assert exc.value.details["errors"][0]["field"] == "public_key"


def test_rotation_and_revocation_publish_trust_versions_announced_to_every_enrolled_province(nation):
    s = nation.session
    old = nation.enrol("44")
    nation.enrol("11")
    before = ledger.current_trust_version(s)
    new = fixed_signer("44 rotated")
    trust = registry.add_key(s, nation.keys, nation.origin, "44", _b64(new))
    assert trust.version == before + 1 and {old.keyid, new.keyid} <= set(trust.province_keys("44").keys)
    trust = registry.revoke_key(s, nation.keys, nation.origin, old.keyid, "rotated")
    assert set(trust.province_keys("44").keys) == {new.keyid}
    routing.sequence_all(s, nation.keys)  # as a pull or the export does
    updates = s.scalars(select(InboxMessage).where(InboxMessage.kind == "trust_update")).all()
    # 44 heard of its own enrolment, 11's, the rotation and the revocation; 11 of the last three
    assert sorted((m.province_code, m.seq) for m in updates) == [
        ("11", 1),
        ("11", 2),
        ("11", 3),
        ("44", 1),
        ("44", 2),
        ("44", 3),
        ("44", 4),
    ]
    with pytest.raises(NotFoundError):
        registry.revoke_key(s, nation.keys, nation.origin, old.keyid, "twice")
    with pytest.raises(ConflictError):
        registry.add_key(s, nation.keys, nation.origin, "44", _b64(new))
    with pytest.raises(ConflictError):  # not enrolled
        registry.add_key(s, nation.keys, nation.origin, "12", _b64(fixed_signer("12")))
