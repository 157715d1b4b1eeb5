"""Enrolment of a province's key with a one-time token, rotation and revocation of province keys, renewal of
the trust metadata. Every key change is published as a new trust version (signed by the root keys and
logged) and routed to every enrolled province's inbox (``trust_update``)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import AuthError, ConflictError, NotFoundError
from common.keyfile import match_key_id
from national_node.inbox import routing
from national_node.keys import NodeKeys
from national_node.ledger import ledger
from national_node.provinces import provinces
from national_node.provinces.models import ProvinceKey
from sync_protocol.trust import TrustMetadata


def _publish(
    session: Session, keys: NodeKeys, origin: str, reason: str, now: dt.datetime | None = None
) -> TrustMetadata:
    """Publish a new trust version and route it to every enrolled province's inbox (trust_update)."""
    trust = ledger.publish_trust(session, keys, origin, reason, now)
    body = {"version": trust.version, "envelope": json.loads(trust.envelope)}
    for code in provinces.enrolled_codes(session):
        routing.route(session, keys, code, "trust_update", body, now)
    return trust


def enrol(
    session: Session,
    keys: NodeKeys,
    origin: str,
    code: str,
    token: str,
    public_key: str,
    now: dt.datetime | None = None,
) -> TrustMetadata:
    """A province enrols a key with the one-time token the ministry operator handed over: its first key, or a
    new one (``tmis province keys rotate --token``), also when its current key is revoked or compromised."""
    now = now or utcnow()
    province = provinces.get(session, code)
    if not provinces.claim_token(session, province, token, now):
        raise AuthError("enrolment token invalid, used, expired or for another province")
    key = provinces.public_key(public_key)
    if session.get(ProvinceKey, key.keyid):
        raise ConflictError("this key is already registered")
    province.enrolled_at = province.enrolled_at or now
    session.add(ProvinceKey(keyid=key.keyid, province_code=province.code, public_key=public_key))
    session.flush()
    return _publish(session, keys, origin, f"enrol {province.code}", now)


def add_key(session: Session, keys: NodeKeys, origin: str, code: str, public_key: str) -> TrustMetadata:
    """Rotation, step 1: list the new key beside the old one (publish, let the province switch, then revoke)."""
    province = provinces.get(session, code)
    if province.enrolled_at is None:
        raise ConflictError(f"province {code} is not enrolled")
    key = provinces.public_key(public_key)
    if session.get(ProvinceKey, key.keyid):
        raise ConflictError("this key is already registered")
    session.add(ProvinceKey(keyid=key.keyid, province_code=province.code, public_key=public_key))
    session.flush()
    return _publish(session, keys, origin, f"add key for {code}")


def revoke_key(session: Session, keys: NodeKeys, origin: str, keyid: str, reason: str) -> TrustMetadata:
    """Publish a trust version without the key (its full id, or a unique prefix of ≥ 8 hex characters as
    ``trust show`` prints it). Batches it signed before stay valid at their log position."""
    active = list(session.scalars(select(ProvinceKey.keyid).where(ProvinceKey.revoked_at.is_(None))))
    try:
        keyid = match_key_id(active, keyid)
    except NotFoundError:
        raise NotFoundError(f"no active key {keyid}", details={"key_id": keyid}) from None
    row = session.get(ProvinceKey, keyid)
    row.revoked_at = utcnow()
    session.flush()
    return _publish(session, keys, origin, f"revoke {keyid[:16]} of {row.province_code}: {reason}")


def renew(session: Session, keys: NodeKeys, origin: str, reason: str) -> TrustMetadata:
    """The same keys under a new version with a fresh expiry."""
    return _publish(session, keys, origin, reason)
