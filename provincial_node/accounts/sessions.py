"""Browser sessions of the pages (separate from the API's bearer tokens).

The cookie holds a random 256-bit value; only its SHA-256 is stored (``web_session``). A session ends at
logout, after ``idle`` without a request, at its absolute end (``lifetime`` after login), and whenever the
account is disabled, locked, reset or its role changes (:func:`end_all`, called with the token revocation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from provincial_node.accounts.models import Account, WebSession

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen is written at most this often (not on every request)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session,
    account: Account,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
    address: str | None,
    user_agent: str | None,
) -> str:
    """A new session for a signed-in account; returns the cookie value (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_hash(token),
            account_id=account.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            address=(address or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    return token


def resume(session: Session, token: str, *, now: dt.datetime, idle: dt.timedelta) -> tuple[Account, WebSession] | None:
    """The account of a live session and the session (None when it is unknown, ended, idle too long, or the
    account is disabled or locked); a live session's last request time is refreshed."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled or (account.locked_until and account.locked_until > now):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return account, row


def close(session: Session, token: str, now: dt.datetime) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _hash(token), WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def end_all(session: Session, account_id: int, now: dt.datetime) -> None:
    """End every open browser session of an account (lock-out, reset, disable, role change)."""
    session.execute(
        update(WebSession)
        .where(WebSession.account_id == account_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
