"""Provinces, their keys and one-time enrolment tokens, and the nonces of their signed requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import ErrorCode, FieldError, TmisError, ValidationError
from national_node.provinces.models import EnrolmentToken, Province, ProvinceKey, RequestNonce
from sync_protocol.errors import ProtocolError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import PublicKey, b64decode

TOKEN_TTL = dt.timedelta(days=7)


def get(session: Session, code: str) -> Province:
    """The province of a 2-digit code (every code has a row: migrations create the 32)."""
    try:
        check_province(code)
    except ProtocolError:
        raise ValidationError(
            f"{code!r} is not a province code",
            [FieldError("province", "province", "省级代码无效", "not one of the 32 province codes", code)],
        ) from None
    return session.get(Province, code)


def lock(session: Session, code: str, *, fresh: bool = False) -> Province:
    """The province row, locked until the transaction ends. ``fresh``: the row as the lock sees it (committed
    by whoever held the lock before), not as an earlier statement of this session loaded it."""
    stmt = select(Province).where(Province.code == code).with_for_update()
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one()


def enrolled_codes(session: Session) -> list[str]:
    return list(session.scalars(select(Province.code).where(Province.enrolled_at.is_not(None)).order_by(Province.code)))


def issue_token(session: Session, code: str, now: dt.datetime | None = None) -> str:
    """A one-time enrolment token (valid 7 days); only its SHA-256 is stored."""
    province = get(session, code)
    token = secrets.token_urlsafe(24)
    session.add(
        EnrolmentToken(
            province_code=province.code,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            expires_at=(now or utcnow()) + TOKEN_TTL,
        )
    )
    return token


def claim_token(session: Session, province: Province, token: str, now: dt.datetime) -> bool:
    """Use a token of ``province`` once; False when it is unknown, used, expired or another province's."""
    row = session.scalar(
        select(EnrolmentToken)
        .where(EnrolmentToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
        .with_for_update()
    )
    if row is None or row.province_code != province.code or row.used_at is not None or row.expires_at <= now:
        return False
    row.used_at = now
    return True


def public_key(raw_b64: str) -> PublicKey:
    try:
        return PublicKey(b64decode(raw_b64, "public_key"))
    except ProtocolError as e:
        raise ValidationError(
            "public_key must be the base64 of a 32-byte Ed25519 key",
            [FieldError("province", "public_key", "公钥无效", e.message, raw_b64[:60])],
        ) from None


def active_keys(session: Session) -> dict[str, list[PublicKey]]:
    """Every province's keys that are not revoked (what the next trust version lists)."""
    out: dict[str, list[PublicKey]] = {}
    stmt = select(ProvinceKey).where(ProvinceKey.revoked_at.is_(None)).order_by(ProvinceKey.keyid)
    for k in session.scalars(stmt):
        out.setdefault(k.province_code, []).append(PublicKey(b64decode(k.public_key, "public key")))
    return out


def remember_nonce(session: Session, province: str, nonce: str, now: dt.datetime) -> None:
    """Refuse a signed request whose nonce was seen within the replay window (:func:`forget_old_nonces`
    keeps only that window)."""
    try:
        with session.begin_nested():
            session.add(RequestNonce(province_code=province, nonce=nonce, seen_at=now))
    except IntegrityError:
        raise TmisError(
            "replayed request (nonce already seen)", code=ErrorCode.PROTOCOL_SIGNATURE_INVALID, http_status=401
        ) from None


def forget_old_nonces(session: Session, now: dt.datetime, window: dt.timedelta, province: str | None = None) -> None:
    """Drop nonces older than the replay window (of ``province``: requests of two provinces never touch the same
    rows). Run first in every signed request: writing first matters on SQLite (WAL), where a transaction that
    read first cannot start writing once another request committed in between — it fails at once with
    "database is locked" (two batches in flight hit this); starting with the write waits for the lock instead.
    On PostgreSQL the rows another request is already deleting are skipped (``SKIP LOCKED``): two requests never
    wait on each other here, so this first statement can take no part in a lock cycle."""
    where = [RequestNonce.seen_at < now - window]
    if province is not None:
        where.append(RequestNonce.province_code == province)
    if session.get_bind().dialect.name == "postgresql":
        old = select(RequestNonce.province_code, RequestNonce.nonce).where(*where).with_for_update(skip_locked=True)
        session.execute(delete(RequestNonce).where(tuple_(RequestNonce.province_code, RequestNonce.nonce).in_(old)))
    else:
        session.execute(delete(RequestNonce).where(*where))
