"""The login log (登录日志): every login attempt — successful or not, known username or not — with the time,
the address and the outcome; the throttling of logins counts from it. Failed attempts are written although the
login request fails (the API keeps the writes of a failed login).

Outcomes are :class:`LoginOutcome`, channels :class:`Channel`. The event is scoped by the account's unit (an
unknown username by the root), and read (:func:`provincial_node.audit_trail.search.login_events`) as
:data:`~provincial_node.rules.Operation.LOGIN_LOG_READ` allows; every user may read their own.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.enums import LabelledStrEnum
from provincial_node.audit_trail.models import LoginEvent


class LoginOutcome(LabelledStrEnum):
    SUCCESS = "success", "登录成功"
    FAILED = "failed", "用户名或密码错误"  # unknown username, wrong password, disabled account: one answer
    LOCKED = "locked", "账号已锁定"
    THROTTLED = "throttled", "尝试过于频繁"
    LOGOUT = "logout", "退出登录"

    @property
    def failure(self) -> bool:
        return self in (LoginOutcome.FAILED, LoginOutcome.LOCKED, LoginOutcome.THROTTLED)


class Channel(LabelledStrEnum):
    """Where a login came from."""

    WEB = "web", "网页"
    API = "api", "接口（API）"
    CLI = "cli", "命令行"


def record_login(
    session: Session,
    *,
    at: dt.datetime,
    username: str,
    account_id: int | None,
    address: str,
    channel: str,
    outcome: LoginOutcome,
    unit_path: str,
) -> LoginEvent:
    event = LoginEvent(
        at=at,
        username=(username or "")[:64],
        account_id=account_id,
        address=(address or "unknown")[:64],
        channel=channel,
        outcome=outcome,
        unit_path=unit_path,
    )
    session.add(event)
    session.flush()
    return event


def failures_since(
    session: Session, since: dt.datetime, *, username: str | None = None, address: str | None = None
) -> int:
    """Failed attempts since ``since`` for a username (as typed) or from an address."""
    stmt = (
        select(func.count())
        .select_from(LoginEvent)
        .where(LoginEvent.at > since, LoginEvent.outcome.in_([LoginOutcome.FAILED, LoginOutcome.LOCKED]))
    )
    if username is not None:
        stmt = stmt.where(LoginEvent.username == username[:64])
    if address is not None:
        stmt = stmt.where(LoginEvent.address == address[:64])
    return int(session.scalar(stmt) or 0)
