"""Accounts (账号), passwords, login, lock-out, API tokens and the end of sessions.

Rules (暂行办法 art. 13–14, Inner Mongolia's 责任书, DESIGN.md §5, §10):

* Real-name accounts (实名): real name, and for every account a user creates except a teacher's, the ID
  number and a phone number (e-mail optional); roles are :class:`~provincial_node.context.Role`; at most one
  system administrator per unit (a unique partial index enforces it).
* Who manages whom is the access table's (:mod:`provincial_node.rules`): a unit's system administrator
  creates and manages the accounts of its own unit and the system administrators of the units directly below;
  a school's system administrator creates its teachers' accounts (:mod:`provincial_node.teacher_files.self_service`).
* Passwords (:mod:`provincial_node.accounts.passwords`): 10 to 128 characters, 3 of the 4 classes, not on the
  common-password list (``data/common-passwords.txt.gz``), not containing the username, not one of the last 5;
  hashed with Argon2id.
  New accounts and resets must change the password at first login; a password older than the province's
  maximum age (``TMIS_PASSWORD_MAX_AGE_DAYS``) must be changed at the next login.
* A reset by the unit above gives a one-time password (generated here, shown once) that must be changed.
* Login (:func:`verify_credentials`, which the API's and the pages' logins both call): one answer — "wrong
  username or password" — for an unknown username, a disabled account and a wrong password; after
  ``TMIS_LOGIN_MAX_FAILURES`` failures a username (known or not) is locked for ``TMIS_LOGIN_LOCK_MINUTES``; an
  address with more than ``TMIS_LOGIN_MAX_PER_ADDRESS`` failures in 15 minutes is refused for a while (429).
  Every attempt goes to the login log (登录日志).
* Sessions: every API token (and every web session) carries the account's *session generation*; a lock-out,
  a reset, a disable and a role change raise it, which ends every open token and session of the account at
  once (:mod:`provincial_node.accounts.tokens`). Tokens also expire after ``TMIS_TOKEN_IDLE_MINUTES`` unused and
  ``TMIS_TOKEN_LIFETIME_MINUTES`` in all.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from common.errors import (
    AuthError,
    ConflictError,
    ErrorCode,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    invalid,
)
from common.identity import IdentityError, validate_identity
from provincial_node.accounts import passwords, second_factor, tokens
from provincial_node.accounts.access import province_unit
from provincial_node.accounts.models import Account, PasswordHistory, Unit
from provincial_node.audit_trail import trail
from provincial_node.audit_trail.logins import LoginOutcome, failures_since, record_login
from provincial_node.context import ProvinceContext, Role, Settings
from provincial_node.rules import Operation, authorize, mask_id_number

ADDRESS_WINDOW = dt.timedelta(minutes=15)


_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{3,64}\Z")
_PHONE = re.compile(r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,24}\Z")


class AccountLockedError(AuthError):
    code = ErrorCode.ACCOUNT_LOCKED
    http_status = 423


class LoginThrottledError(AuthError):
    code = ErrorCode.LOGIN_THROTTLED
    http_status = 429


WRONG_CREDENTIALS = "wrong username or password (用户名或密码错误)"


def check_username(username: str) -> None:
    if not _USERNAME.match(username or ""):
        raise invalid(
            "account", "username", "用户名为3–64位字母、数字或 _ . @ -", "3–64 letters, digits or _ . @ -", username
        )


def _real_name_data(
    role: str, id_number: str | None, phone: str | None, email: str | None, required: bool
) -> str | None:
    """Check the real-name data (ID number, phone, e-mail); returns the normalised ID number."""
    errors = []
    number = None
    if id_number:
        try:
            number = validate_identity("1", id_number).number
        except IdentityError as e:
            errors.append(FieldError("account", "id_number", e.reason_zh, e.reason_en, label="身份证件号"))
    elif required:
        errors.append(FieldError("account", "id_number", "实名账号须填写身份证件号", "the ID number is required"))
    if phone:
        if not _PHONE.match(phone):
            errors.append(FieldError("account", "phone", "手机号或固定电话格式不正确", "not a phone number", phone))
    elif required:
        errors.append(FieldError("account", "phone", "实名账号须填写联系电话", "a phone number is required"))
    if email and not _EMAIL.match(email):
        errors.append(FieldError("account", "email", "电子邮箱格式不正确", "not an e-mail address", email))
    if errors:
        raise ValidationError("the account's real-name data is invalid", errors)
    return number


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
    email: str | None = None,
    teacher_id: int | None = None,
) -> Account:
    """Create an account. ``ctx.actor`` None is the node's own bootstrap (``tmis province init``, tests). An
    administrator that uses a security key must have used it recently (step-up)."""
    second_factor.require_fresh(ctx, "an account change")
    session, actor = ctx.session, ctx.actor
    if role not in tuple(Role):
        raise invalid("account", "role", "角色无效", f"role must be one of {', '.join(Role)}", role)
    check_username(username)
    if not (real_name or "").strip():
        raise invalid("account", "real_name", "实名必填", "the real name is required", real_name)
    if actor is not None:
        authorize(ctx, Operation.ACCOUNT_CREATE, unit, target_role=role, not_found=f"unit {unit.id} not found")
    if role == Role.TEACHER and teacher_id is None:
        raise invalid("account", "teacher", "教师账号须关联教师档案", "a teacher account belongs to a teacher file")
    number = _real_name_data(role, id_number, phone, email, required=actor is not None and role != Role.TEACHER)
    passwords.check_password(password, username=username)
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
        password_hash=passwords.hash_password(password),
        must_change_password=True,
        password_changed_at=ctx.now,
        phone=phone,
        email=email,
        teacher_id=teacher_id,
    )
    account.set_id_number(number)
    session.add(account)
    session.flush()
    trail.record(ctx, "account.create", "account", account.id, unit.path, username=username, role=role)
    return account


def in_scope(ctx: ProvinceContext) -> list[Account]:
    """The accounts the caller manages: every account of its own unit and the system administrators of the
    units directly below (system administrators)."""
    authorize(ctx, Operation.ACCOUNTS_READ)
    actor = ctx.user
    stmt = (
        select(Account)
        .join(Unit, Unit.id == Account.unit_id)
        .where(
            or_(
                Account.unit_id == actor.unit_id,
                and_(Unit.parent_id == actor.unit_id, Account.role == Role.SYSADMIN),
            )
        )
        .order_by(Account.id)
    )
    return list(ctx.session.scalars(stmt))


def _managed_account(ctx: ProvinceContext, account_id: int) -> Account:
    account = ctx.session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"account {account_id} not found")
    unit = ctx.session.get(Unit, account.unit_id)
    authorize(
        ctx, Operation.ACCOUNT_MANAGE, unit, target_role=account.role, not_found=f"account {account_id} not found"
    )
    if account.id == ctx.user.account_id:
        raise PermissionDeniedError("administrators cannot change their own account this way")
    return account


def end_sessions(session: Session, account: Account, now: dt.datetime | None = None) -> None:
    """End every open API token and web session of the account: the session generation goes up (web sessions
    compare theirs) and its tokens are revoked."""
    account.session_generation = (account.session_generation or 0) + 1
    tokens.revoke_all_tokens(session, account.id, now)


def set_account_state(
    ctx: ProvinceContext, account_id: int, action: str, reason: str, new_password: str | None = None
) -> Account:
    """unlock | disable | restore (| reset_password with a chosen ``new_password``; :func:`reset_password`
    gives a one-time password instead), by the system administrator the access table names. Disabling ends every
    session of the account."""
    second_factor.require_fresh(ctx, "an account change")
    if action == "reset_password":
        return reset_password(ctx, account_id, reason, new_password=new_password)[0]
    session = ctx.session
    if not (reason or "").strip():
        raise invalid("account", "reason", "须说明原因", "a reason is required")
    account = _managed_account(ctx, account_id)
    if action == "unlock":
        account.failed_logins, account.locked_until = 0, None
    elif action == "disable":
        account.disabled = True
        end_sessions(session, account, ctx.now)
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


def reset_password(
    ctx: ProvinceContext, account_id: int, reason: str, *, new_password: str | None = None
) -> tuple[Account, str]:
    """Reset an account's password by the unit above (or the unit's own system administrator): a one-time
    password (generated unless ``new_password`` is given) that must be changed at the next login; the lock is
    lifted and every session of the account ends. Returns the account and the one-time password."""
    second_factor.require_fresh(ctx, "an account change")
    session = ctx.session
    if not (reason or "").strip():
        raise invalid("account", "reason", "须说明原因", "a reason is required")
    account = _managed_account(ctx, account_id)
    password = new_password or passwords.one_time_password()
    if new_password is not None:
        passwords.check_password(password, username=account.username)
    account.password_hash = passwords.hash_password(password)
    account.must_change_password = True
    account.failed_logins, account.locked_until = 0, None
    end_sessions(session, account, ctx.now)
    trail.record(
        ctx,
        "account.reset_password",
        "account",
        account.id,
        session.get(Unit, account.unit_id).path,
        reason=reason,
        username=account.username,
    )
    return account, password


def change_role(ctx: ProvinceContext, account_id: int, role: str, reason: str) -> Account:
    """Change an account's role (not to or from 教师: teacher accounts belong to files); ends its sessions."""
    second_factor.require_fresh(ctx, "an account change")
    session = ctx.session
    if not (reason or "").strip():
        raise invalid("account", "reason", "须说明原因", "a reason is required")
    account = _managed_account(ctx, account_id)
    unit = session.get(Unit, account.unit_id)
    if role not in tuple(Role) or Role.TEACHER in (role, account.role):
        raise invalid("account", "role", "角色无效", "a role other than teacher", role)
    authorize(ctx, Operation.ACCOUNT_CREATE, unit, target_role=role)
    if role == Role.SYSADMIN and session.scalar(
        select(Account.id).where(Account.unit_id == unit.id, Account.role == Role.SYSADMIN, Account.id != account.id)
    ):
        raise ConflictError("this unit already has a system administrator", details={"unit": unit.code})
    old = account.role
    account.role = role
    end_sessions(session, account, ctx.now)
    trail.record(
        ctx,
        "account.role",
        "account",
        account.id,
        unit.path,
        reason=reason,
        username=account.username,
        old=old,
        new=role,
    )
    return account


def find_login_account(session: Session, username: str) -> Account | None:
    """The account a login name names: its username, or (teachers) its ID number or teacher number."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None and username and len(username) in (15, 18):
        account = session.scalar(
            select(Account).where(Account.id_index == username.upper(), Account.role == Role.TEACHER)
        )
    return account


def verify_credentials(
    ctx: ProvinceContext, username: str, password: str, *, address: str = "unknown", channel: str = "api"
) -> Account:
    """The one login check (API token, web session, CLI ``--as``): throttling per address and per username, the
    lock-out, the password; one answer for an unknown username, a disabled account and a wrong password. Every
    attempt is written to the login log; the caller must keep the writes when this raises (the API does).

    On success the account's ``must_change_password`` is set when its password is older than the province's
    maximum age."""
    session, now, settings = ctx.session, ctx.now, ctx.settings
    address = (address or "unknown")[:64]
    root = province_unit(session).path
    account = find_login_account(session, username or "")
    # the name the login log keeps: the account's username, or what was typed, an ID number masked
    logged = account.username if account else _loggable(username or "")

    def log(outcome: LoginOutcome, account: Account | None) -> None:
        path = session.get(Unit, account.unit_id).path if account else root
        record_login(
            session,
            at=now,
            username=logged,
            account_id=account.id if account else None,
            address=address,
            channel=channel,
            outcome=outcome,
            unit_path=path,
        )

    if failures_since(session, now - ADDRESS_WINDOW, address=address) >= settings.login_max_per_address:
        log(LoginOutcome.THROTTLED, None)
        raise LoginThrottledError(
            "too many failed logins from this address; try again later (登录尝试过于频繁)",
            details={"retry_after_seconds": int(ADDRESS_WINDOW.total_seconds())},
            message_zh=f"登录尝试过于频繁，请 {int(ADDRESS_WINDOW.total_seconds() // 60)} 分钟后再试",
        )
    locked_until = account.locked_until if account else None
    if account is None and failures_since(session, now - settings.login_lock, username=logged) >= (
        settings.login_max_failures
    ):
        locked_until = now + settings.login_lock  # an unknown username answers like a locked one
    if locked_until and locked_until > now:
        log(LoginOutcome.LOCKED, account)
        raise AccountLockedError(
            "account locked after repeated failed logins (账号已锁定)",
            message_zh=f"连续登录失败次数过多，账号已暂时锁定（{settings.login_lock.seconds // 60} 分钟），"
            "请稍后再试，或请本单位或上级单位系统管理员解锁",
        )
    ok = passwords.password_matches(account.password_hash if account else passwords.dummy_hash(), password or "")
    if not ok or account is None or account.disabled:
        log(LoginOutcome.FAILED, account)
        if account is not None and not account.disabled and not ok:
            account.failed_logins += 1
            if account.failed_logins >= settings.login_max_failures:
                account.locked_until = now + settings.login_lock
                account.failed_logins = 0
                end_sessions(session, account, now)
                trail.record(
                    ctx.acting_as(None),
                    "account.locked",
                    "account",
                    account.id,
                    session.get(Unit, account.unit_id).path,
                    username=account.username,
                    address=address,
                )
        raise AuthError(WRONG_CREDENTIALS, message_zh="用户名或密码错误") from None
    account.failed_logins, account.locked_until = 0, None
    if password_expired(account, now, settings):
        account.must_change_password = True
    log(LoginOutcome.SUCCESS, account)
    return account


def record_logout(ctx: ProvinceContext, address: str | None, channel: str) -> None:
    """The login log's 退出登录 line for the account signing out (a page session or an API token; none when
    nobody was signed in, e.g. a session that had already ended)."""
    if ctx.actor is None:
        return
    record_login(
        ctx.session,
        at=ctx.now,
        username=ctx.actor.username,
        account_id=ctx.actor.account_id,
        address=address or "unknown",
        channel=channel,
        outcome=LoginOutcome.LOGOUT,
        unit_path=ctx.actor.unit_path,
    )


_ID_LIKE = re.compile(r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$")


def _loggable(name: str) -> str:
    """What the login log keeps of a name that matched no account: an ID number masked (前6后4)."""
    return mask_id_number(name) if _ID_LIKE.match(name) else name


def password_expired(account: Account, now: dt.datetime, settings: Settings) -> bool:
    if settings.password_max_age is None:
        return False
    changed = account.password_changed_at or account.created_at
    return changed is not None and changed + settings.password_max_age <= now


def login(
    ctx: ProvinceContext, username: str, password: str, *, address: str = "unknown", channel: str = "api"
) -> tuple[str, Account]:
    """Check the credentials (:func:`verify_credentials`) and return a new bearer token."""
    account = verify_credentials(ctx, username, password, address=address, channel=channel)
    return tokens.issue_token(ctx, account), account


def change_password(ctx: ProvinceContext, old: str, new: str) -> None:
    """The caller changes their own password (required at first login, after a reset and on expiry)."""
    account = ctx.session.get(Account, ctx.user.account_id)
    if not passwords.password_matches(account.password_hash, old):
        raise AuthError("the current password is wrong") from None
    if old == new:
        raise invalid("account", "new_password", "新密码不能与旧密码相同", "the new password must differ from the old")
    previous = [account.password_hash] + [
        h.password_hash
        for h in ctx.session.scalars(
            select(PasswordHistory)
            .where(PasswordHistory.account_id == account.id)
            .order_by(PasswordHistory.id.desc())
            .limit(passwords.PASSWORD_HISTORY - 1)
        )
    ]
    passwords.check_password(new, username=account.username, previous=tuple(previous))
    ctx.session.add(PasswordHistory(account_id=account.id, password_hash=account.password_hash, created_at=ctx.now))
    account.password_hash = passwords.hash_password(new)
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
