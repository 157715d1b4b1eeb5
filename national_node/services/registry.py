"""Province registry: one-time enrolment tokens, enrolment of a province's key, rotation and revocation.
Every key change is published as a new trust version (signed by the root keys and logged)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import AuthError, ConflictError, NotFoundError, ValidationError
from national_node.models import EnrolmentToken, Province, ProvinceKey
from national_node.services import inbox, ledger
from national_node.services.ledger import NodeKeys
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import PublicKey, b64decode
from sync_protocol.trust import TrustMetadata

TOKEN_TTL = dt.timedelta(days=7)


def _publish(
    session: Session, keys: NodeKeys, origin: str, reason: str, now: dt.datetime | None = None
) -> TrustMetadata:
    """Publish a new trust version and route it to every enrolled province's inbox (trust_update)."""
    trust = ledger.publish_trust(session, keys, origin, reason, now)
    body = {"version": trust.version, "envelope": json.loads(trust.envelope)}
    for code in session.scalars(select(Province.code).where(Province.enrolled_at.is_not(None)).order_by(Province.code)):
        inbox.route(session, keys, code, "trust_update", body, now)
    return trust


def _province(session: Session, code: str) -> Province:
    try:
        check_province(code)
    except ProtocolError:
        raise ValidationError(
            f"{code!r} is not a province code",
            errors=[
                {
                    "field": "province",
                    "value": code,
                    "reason_zh": "省级代码无效",
                    "reason_en": "not one of the 32 province codes",
                }
            ],
        ) from None
    return session.get(Province, code)


def issue_token(session: Session, code: str, now: dt.datetime | None = None) -> str:
    province = _province(session, code)
    token = secrets.token_urlsafe(24)
    session.add(
        EnrolmentToken(
            province_code=province.code,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=(now or utcnow()) + TOKEN_TTL,
        )
    )
    return token


def _public_key(raw_b64: str) -> PublicKey:
    try:
        return PublicKey(b64decode(raw_b64, "public_key"))
    except ProtocolError as e:
        raise ValidationError(
            "public_key must be the base64 of a 32-byte Ed25519 key",
            errors=[{"field": "public_key", "value": raw_b64[:60], "reason_zh": "公钥无效", "reason_en": e.message}],
        ) from None


def enrol(
    session: Session,
    keys: NodeKeys,
    origin: str,
    code: str,
    token: str,
    public_key: str,
    now: dt.datetime | None = None,
) -> TrustMetadata:
    now = now or utcnow()
    province = _province(session, code)
    row = session.scalar(
        select(EnrolmentToken)
        .where(EnrolmentToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
        .with_for_update()
    )
    if row is None or row.province_code != province.code or row.used_at is not None or row.expires_at <= now:
        raise AuthError("enrolment token invalid, used, expired or for another province")
    key = _public_key(public_key)
    if session.get(ProvinceKey, key.keyid):
        raise ConflictError("this key is already registered")
    row.used_at = now
    province.enrolled_at = province.enrolled_at or now
    session.add(ProvinceKey(keyid=key.keyid, province_code=province.code, public_key=public_key))
    session.flush()
    return _publish(session, keys, origin, f"enrol {province.code}", now)


def add_key(session: Session, keys: NodeKeys, origin: str, code: str, public_key: str) -> TrustMetadata:
    """Rotation, step 1: list the new key beside the old one (publish, let the province switch, then revoke)."""
    province = _province(session, code)
    if province.enrolled_at is None:
        raise ConflictError(f"province {code} is not enrolled")
    key = _public_key(public_key)
    if session.get(ProvinceKey, key.keyid):
        raise ConflictError("this key is already registered")
    session.add(ProvinceKey(keyid=key.keyid, province_code=province.code, public_key=public_key))
    session.flush()
    return _publish(session, keys, origin, f"add key for {code}")


def revoke_key(session: Session, keys: NodeKeys, origin: str, keyid: str, reason: str) -> TrustMetadata:
    row = session.get(ProvinceKey, keyid)
    if row is None or row.revoked_at is not None:
        raise NotFoundError(f"no active key {keyid}")
    row.revoked_at = utcnow()
    session.flush()
    return _publish(session, keys, origin, f"revoke {keyid[:16]} of {row.province_code}: {reason}")


def renew(session: Session, keys: NodeKeys, origin: str, reason: str) -> TrustMetadata:
    """The same keys under a new version with a fresh expiry."""
    return _publish(session, keys, origin, reason)
