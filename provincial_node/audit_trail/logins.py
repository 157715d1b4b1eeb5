"""The login log (登录日志): every login attempt — successful or not, known username or not — with the time,
the address and the outcome; the throttling of logins counts from it. Failed attempts are written although the
login request fails (the API keeps the writes of a failed login).

Outcomes are :class:`LoginOutcome`. The event is scoped by the account's unit (an unknown username by the
root), and read as :data:`~provincial_node.rules.Operation.LOGIN_LOG_READ` allows; every user may read their
own.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from common.enums import LabelledStrEnum
from provincial_node.audit_trail.models import LoginEvent
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, rule_for


class LoginOutcome(LabelledStrEnum):
    SUCCESS = "success", "登录成功"
    FAILED = "failed", "用户名或密码错误"  # unknown username, wrong password, disabled account: one answer
    LOCKED = "locked", "账号已锁定"
    THROTTLED = "throttled", "尝试过于频繁"
    LOGOUT = "logout", "退出登录"

    @property
    def failure(self) -> bool:
        return self in (LoginOutcome.FAILED, LoginOutcome.LOCKED, LoginOutcome.THROTTLED)


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


def query(
    ctx: ProvinceContext,
    *,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LoginEvent]:
    """Login events of the accounts of the actor's subtree (system administrators), or the actor's own
    (everyone else), newest first."""
    actor = ctx.user
    stmt = select(LoginEvent)
    if rule_for(Operation.LOGIN_LOG_READ, actor.role, actor.unit_level) is not None:
        stmt = stmt.where(
            or_(
                LoginEvent.unit_path.startswith(actor.unit_path, autoescape=True),
                LoginEvent.account_id == actor.account_id,
            )
        )
    else:
        stmt = stmt.where(LoginEvent.account_id == actor.account_id)
    if outcome:
        stmt = stmt.where(LoginEvent.outcome == outcome)
    if since:
        stmt = stmt.where(LoginEvent.at >= since)
    return list(ctx.session.scalars(stmt.order_by(LoginEvent.id.desc()).limit(min(limit, 1000)).offset(offset)))
