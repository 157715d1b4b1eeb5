"""Accounts (账号), passwords, lock-out and API tokens.

Rules (暂行办法 art. 13, the teacher self-service guides, DESIGN.md §5):

* Real-name accounts; roles are :class:`~provincial_node.context.Role`; at most one system
  administrator per unit (a unique partial index enforces it).
* Who manages whom: a unit's system administrator creates the accounts of its own unit and the
  administrators (sysadmin/infoadmin) of the units directly below; a school's system administrator creates
  its teachers' accounts (:mod:`provincial_node.teacher_files.self_service`, which checks them against the
  file). Unlock, password reset, disable and restore are done by the system administrator
  of the account's own unit or of the unit above.
* Passwords: at least 8 characters with 3 of the 4 classes (upper, lower, digit, symbol); hashed with
  Argon2id (argon2-cffi); new accounts and resets must change the password at first login.
* Lock-out: 5 consecutive failures lock the account for 10 minutes.
* Tokens: random 256-bit bearer tokens, stored as SHA-256, expiring (default 8 h) and revocable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import AuthError, ConflictError, ErrorCode, NotFoundError, PermissionDeniedError, invalid
from provincial_node.accounts.models import Account, ApiToken, Unit
from provincial_node.audit_trail import trail
from provincial_node.context import Actor, ProvinceContext, Role

MAX_FAILURES = 5
LOCK_FOR = dt.timedelta(minutes=10)
TOKEN_TTL = dt.timedelta(hours=8)
_HASHER = PasswordHasher()  # argon2-cffi's RFC 9106 defaults (Argon2id, 64 MiB, 3 passes)


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the hasher (tests use cheaper parameters; existing hashes keep verifying: Argon2 hashes
    carry their own parameters)."""
    global _HASHER
    _HASHER = hasher


_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{3,64}\Z")


class AccountLockedError(AuthError):
    code = ErrorCode.ACCOUNT_LOCKED
    http_status = 423


def check_password_strength(password: str) -> None:
    classes = sum(bool(re.search(p, password)) for p in (r"[A-Z]", r"[a-z]", r"\d", r"[^A-Za-z0-9]"))
    if len(password) < 8 or classes < 3:
        raise invalid(
            "account",
            "password",
            "密码至少8位，且包含大写字母、小写字母、数字、符号中的至少3类",
            "at least 8 characters with 3 of: upper case, lower case, digits, symbols",
        )


def check_username(username: str) -> None:
    if not _USERNAME.match(username or ""):
        raise invalid(
            "account", "username", "用户名为3–64位字母、数字或 _ . @ -", "3–64 letters, digits or _ . @ -", username
        )


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _can_manage(actor: Actor, target_unit: Unit, target_role: str) -> bool:
    if actor.role != Role.SYSADMIN:
        return False
    if target_unit.id == actor.unit_id:
        return True
    # administrators of the units directly below
    return target_unit.parent_id == actor.unit_id and target_role in (Role.SYSADMIN, Role.INFOADMIN)


def create_account(
    ctx: ProvinceContext,
    *,
    username: str,
    real_name: str,
    unit: Unit,
    role: str,
    password: str,
    phone: str | None = None,
    id_number: str | None = None,
    teacher_id: int | None = None,
) -> Account:
    """Create an account. ``ctx.actor`` None is the node's own bootstrap (``tmis province init``)."""
    session, actor = ctx.session, ctx.actor
    if role not in tuple(Role):
        raise invalid("account", "role", "角色无效", f"role must be one of {', '.join(Role)}", role)
    check_username(username)
    if not (real_name or "").strip():
        raise invalid("account", "real_name", "实名必填", "the real name is required", real_name)
    if actor is not None and not (actor.contains(unit) and _can_manage(actor, unit, role)):
        raise PermissionDeniedError(
            "only the unit's system administrator, or the one of the unit above for "
            "administrators, may create this account"
        )
    if role == Role.TEACHER and teacher_id is None:
        raise invalid("account", "teacher", "教师账号须关联教师档案", "a teacher account belongs to a teacher file")
    check_password_strength(password)
    if session.scalar(select(Account.id).where(Account.username == username)):
        raise ConflictError(f"username {username} is taken", details={"username": username})
    if role == Role.SYSADMIN and session.scalar(
        select(Account.id).where(Account.unit_id == unit.id, Account.role == Role.SYSADMIN)
    ):
        raise ConflictError("this unit already has a system administrator", details={"unit": unit.code})
    account = Account(
        username=username,
        real_name=real_name.strip(),
        unit_id=unit.id,
        role=role,
        password_hash=hash_password(password),
        must_change_password=True,
        phone=phone,
        id_number=id_number,
        teacher_id=teacher_id,
    )
    session.add(account)
    session.flush()
    trail.record(ctx, "account.create", "account", account.id, unit.path, username=username, role=role)
    return account


def in_scope(ctx: ProvinceContext) -> list[Account]:
    """The accounts of the caller's subtree (system administrators)."""
    ctx.user.require(Role.SYSADMIN)
    stmt = (
        select(Account)
        .join(Unit, Unit.id == Account.unit_id)
        .where(Unit.path.startswith(ctx.user.unit_path, autoescape=True))
        .order_by(Account.id)
    )
    return list(ctx.session.scalars(stmt))


def _managed_account(session: Session, actor: Actor, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"account {account_id} not found")
    unit = session.get(Unit, account.unit_id)
    if not actor.contains(unit):
        raise NotFoundError(f"account {account_id} not found")
    if actor.role != Role.SYSADMIN or not (unit.id == actor.unit_id or unit.parent_id == actor.unit_id):
        raise PermissionDeniedError(
            "only the system administrator of the account's unit or of the unit above may do this"
        )
    if account.id == actor.account_id:
        raise PermissionDeniedError("administrators cannot change their own account this way")
    return account


def set_account_state(
    ctx: ProvinceContext, account_id: int, action: str, reason: str, new_password: str | None = None
) -> Account:
    """unlock | reset_password | disable | restore, by the sysadmin of the account's unit or the one above."""
    session = ctx.session
    if not (reason or "").strip():
        raise invalid("account", "reason", "须说明原因", "a reason is required")
    account = _managed_account(session, ctx.user, account_id)
    if action == "unlock":
        account.failed_logins, account.locked_until = 0, None
    elif action == "reset_password":
        check_password_strength(new_password or "")
        account.password_hash = hash_password(new_password or "")
        account.must_change_password = True
        account.failed_logins, account.locked_until = 0, None
        revoke_all_tokens(session, account.id)
    elif action == "disable":
        account.disabled = True
        revoke_all_tokens(session, account.id)
    elif action == "restore":
        account.disabled = False
    else:
        raise invalid(
            "account", "action", "操作无效", "action must be unlock, reset_password, disable or restore", action
        )
    trail.record(
        ctx,
        f"account.{action}",
        "account",
        account.id,
        session.get(Unit, account.unit_id).path,
        reason=reason,
        username=account.username,
    )
    return account


def login(ctx: ProvinceContext, username: str, password: str, *, ttl: dt.timedelta = TOKEN_TTL) -> tuple[str, Account]:
    """Check the password; return a new bearer token. Failures count towards the lock-out.

    The failure counter is written even though the login fails: the caller must commit after an
    AuthError raised here (the API does so for this endpoint).
    """
    account = check_credentials(ctx, username, password)
    token = secrets.token_urlsafe(32)
    ctx.session.add(
        ApiToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), account_id=account.id, expires_at=ctx.now + ttl)
    )
    return token, account


def check_credentials(ctx: ProvinceContext, username: str, password: str) -> Account:
    """The account, if ``password`` is its password and it may log in (not disabled, not locked). Failures count
    towards the lock-out exactly as a login's do (the caller commits after an AuthError)."""
    session, now = ctx.session, ctx.now
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None:
        _HASHER.hash(password)  # same cost as a real check: no user enumeration by timing
        raise AuthError("wrong username or password")
    if account.disabled:
        raise AuthError("account disabled")
    if account.locked_until and account.locked_until > now:
        raise AccountLockedError(
            "account locked after repeated failed logins", details={"locked_until": account.locked_until.isoformat()}
        )
    if not password_matches(account.password_hash, password):
        account.failed_logins += 1
        if account.failed_logins >= MAX_FAILURES:
            account.locked_until = now + LOCK_FOR
            account.failed_logins = 0
            trail.record(
                ctx.acting_as(None),
                "account.locked",
                "account",
                account.id,
                session.get(Unit, account.unit_id).path,
                username=account.username,
            )
        raise AuthError("wrong username or password") from None
    account.failed_logins, account.locked_until = 0, None
    return account


def bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    header = headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def authenticate(session: Session, token: str, *, now: dt.datetime | None = None) -> Account:
    now = now or utcnow()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest()))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise AuthError("token invalid, expired or revoked")
    account = session.get(Account, row.account_id)
    if account.disabled:
        raise AuthError("account disabled")
    return account


def logout(session: Session, token: str) -> None:
    session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
        .values(revoked_at=utcnow())
    )


def revoke_all_tokens(session: Session, account_id: int) -> None:
    session.execute(
        update(ApiToken)
        .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def change_password(ctx: ProvinceContext, old: str, new: str) -> None:
    """The caller changes their own password (required at first login)."""
    account = ctx.session.get(Account, ctx.user.account_id)
    if not password_matches(account.password_hash, old):
        raise AuthError("the current password is wrong") from None
    if old == new:
        raise invalid("account", "new_password", "新密码不能与旧密码相同", "the new password must differ from the old")
    check_password_strength(new)
    account.password_hash = hash_password(new)
    account.must_change_password = False
    account.password_changed_at = ctx.now
    trail.record(
        ctx.acting_as(None),
        "account.password_changed",
        "account",
        account.id,
        ctx.session.get(Unit, account.unit_id).path,
        username=account.username,
    )
