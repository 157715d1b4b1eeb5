"""API tokens and the check of a web session: bearer tokens (only their SHA-256 stored) tied to the account's
session generation, with an idle timeout and an absolute lifetime; revoking every token and browser session of an
account (a lock-out, reset, disable or role change)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import AuthError
from provincial_node.accounts import sessions
from provincial_node.accounts.models import Account, ApiToken
from provincial_node.context import ProvinceContext, Settings

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at of a token is written at most this often


def issue_token(ctx: ProvinceContext, account: Account, *, second_factor_at: dt.datetime | None = None) -> str:
    """A new bearer token for the account (only its SHA-256 is stored), tied to its session generation;
    ``second_factor_at``: the key check it was issued after (accounts that use a security key)."""
    token = secrets.token_urlsafe(32)
    ctx.session.add(
        ApiToken(
            token_hash=_token_hash(token),
            account_id=account.id,
            generation=account.session_generation or 0,
            created_at=ctx.now,
            last_used_at=ctx.now,
            expires_at=ctx.now + ctx.settings.token_lifetime,
            second_factor_at=second_factor_at,
        )
    )
    return token


def bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    header = headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def token_row(session: Session, token: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(
    session: Session, token: str, *, now: dt.datetime | None = None, settings: Settings | None = None
) -> Account:
    """The account of a bearer token that is neither revoked, expired (absolute lifetime), idle too long, nor
    from an older session generation of its account (a lock-out, reset, disable or role change since)."""
    now = now or utcnow()
    settings = settings or Settings()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise AuthError("token invalid, expired or revoked")
    if (row.last_used_at or row.created_at) + settings.token_idle <= now:
        raise AuthError("token invalid, expired or revoked")
    account = session.get(Account, row.account_id)
    if account.disabled or row.generation != (account.session_generation or 0):
        raise AuthError("token invalid, expired or revoked")
    if account.locked_until and account.locked_until > now:
        raise AuthError("token invalid, expired or revoked")
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return account


def session_is_current(
    session: Session,
    account_id: int,
    generation: int,
    *,
    started_at: dt.datetime,
    last_seen: dt.datetime,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> Account:
    """For the web login: the account of a cookie session if that session is still good — same session
    generation, within the idle timeout and the absolute lifetime, account not disabled or locked. Raises
    :class:`AuthError` otherwise (the page shell then asks for a new login)."""
    now = now or utcnow()
    settings = settings or Settings()
    account = session.get(Account, account_id)
    if (
        account is None
        or account.disabled
        or generation != (account.session_generation or 0)
        or started_at + settings.token_lifetime <= now
        or last_seen + settings.token_idle <= now
        or (account.locked_until is not None and account.locked_until > now)
    ):
        raise AuthError("the session has ended; log in again")
    return account


def logout(session: Session, token: str) -> None:
    session.execute(update(ApiToken).where(ApiToken.token_hash == _token_hash(token)).values(revoked_at=utcnow()))


def revoke_all_tokens(session: Session, account_id: int, now: dt.datetime | None = None) -> None:
    """End every API token and every browser session of the account."""
    now = now or utcnow()
    session.execute(
        update(ApiToken).where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    sessions.end_all(session, account_id, now)
