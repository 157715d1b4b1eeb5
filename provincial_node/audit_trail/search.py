"""Reading the audit trail (操作日志) and the login log (登录日志): filters, keyset pages, the names shown beside
the entries and the reads an alert flags. The JSON API and the pages call the same functions.

* **Scope.** The audit trail: events concerning the actor's unit or any unit below it
  (:data:`~provincial_node.rules.Operation.AUDIT_READ`). The login log: attempts on the accounts of the actor's
  subtree (:data:`~provincial_node.rules.Operation.LOGIN_LOG_READ`; an unknown username is logged at the root, so
  only the province's administrators see those) and the actor's own. Nothing of a sibling or parent unit is ever
  returned, whatever the filters say: a unit filter outside the subtree is a field error.
* **Filters.** ``since`` (inclusive) and ``until`` (exclusive), UTC; the account's username; the action (one of
  :data:`~provincial_node.audit_trail.actions.ACTIONS`); the unit concerned (with the units below it); the teacher
  number (events about that file, and transfers and change requests naming it). The login log: outcome (or
  ``failure``: every failed kind), channel, address, unit. A bad value is a :class:`~common.errors.ValidationError`
  naming the field (``group`` ``query``), with a Chinese reason for the pages.
* **Pages** are keyset pages, newest first: ``before`` is the id of the last entry of the page before (``更早``);
  no OFFSET, so a page far back costs what the first does.

The audit trail sits below ``accounts`` in the layers (accounts write their changes here), so it reads the two
columns it shows of the account and unit tables through lightweight table clauses instead of their models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Integer, String, column, or_, select, table
from sqlalchemy.sql.elements import ColumnElement

from common.errors import FieldError, ValidationError
from common.text import forbidden_reason
from provincial_node.audit_trail.actions import ACTIONS, action_label, target_label
from provincial_node.audit_trail.logins import Channel, LoginOutcome
from provincial_node.audit_trail.models import AuditEvent, LoginEvent
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, authorize, mask_id_numbers_in, rule_for
from sync_protocol.errors import MalformedError
from sync_protocol.identifiers import check_teacher_number

ACCOUNT = table("account", column("id", Integer), column("username", String), column("real_name", String))
UNIT = table("unit", column("id", Integer), column("path", String), column("name", String), column("code", String))

MAX_PAGE = 1000
MAX_TEXT = 64  # usernames and addresses are stored in 64 characters
FAILURES = "failure"  # the outcome filter for every failed kind
READ_ALERT = "alert.read_volume"
READ_WINDOW = dt.timedelta(hours=1)

T = TypeVar("T")


@dataclass(frozen=True)
class AuditFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    username: str | None = None  # the account that acted
    action: str | None = None
    unit_id: int | None = None  # the unit concerned, with the units below it
    teacher_number: str | None = None


@dataclass(frozen=True)
class LoginFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    username: str | None = None  # as the log keeps it
    outcome: str | None = None  # a LoginOutcome, or FAILURES
    channel: str | None = None
    address: str | None = None
    unit_id: int | None = None  # the account's unit, with the units below it
    own: bool = False  # only the actor's own account (我的登录记录), whatever the actor may see besides


@dataclass(frozen=True)
class Found(Generic[T]):
    """One keyset page: the entries, newest first, and the ``before`` of the next (older) page, if any."""

    rows: list[T]
    next_before: int | None = None


@dataclass(frozen=True)
class Names:
    """What the pages show beside entries: usernames and real names of the acting accounts, unit names."""

    accounts: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (username, real name)
    units: dict[str, str] = field(default_factory=dict)  # path → name


def _error(name: str, zh: str, en: str, value: Any = None) -> FieldError:
    return FieldError("query", name, zh, en, value)


def _text(name: str, value: str | None, label: str) -> FieldError | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        return _error(name, f"{label}不超过 {MAX_TEXT} 个字符", f"at most {MAX_TEXT} characters")
    bad = forbidden_reason(value)
    if bad:
        return _error(name, f"{label}{bad[0]}", bad[1])
    return None


def _period(since: dt.datetime | None, until: dt.datetime | None) -> FieldError | None:
    if since is not None and until is not None and until <= since:
        return _error("until", "结束时间须晚于开始时间", "until must be after since")
    return None


def _unit_path(ctx: ProvinceContext, unit_id: int | None, errors: list[FieldError]) -> str | None:
    """The path of the filter's unit; outside the actor's subtree (or unknown) it is a field error, the same for
    both, so the filter cannot probe for units."""
    if unit_id is None:
        return None
    path = ctx.session.scalar(select(UNIT.c.path).where(UNIT.c.id == unit_id))
    if path is None or not path.startswith(ctx.user.unit_path):
        errors.append(
            _error("unit_id", "请选择本单位或下级单位", "not a unit of the caller's subtree", unit_id),
        )
        return None
    return path


def _raise(errors: Sequence[FieldError]) -> None:
    if errors:
        raise ValidationError("invalid filter: " + ", ".join(f"{e.field}: {e.reason_en}" for e in errors), errors)


def _check_before(before: int | None) -> FieldError | None:
    if before is not None and not 1 <= before <= 2**31 - 1:
        return _error("before", "翻页位置无效，请从第一页重新查询", "before must be an entry id", before)
    return None


def _page(ctx: ProvinceContext, stmt: Any, id_col: Any, before: int | None, limit: int) -> Found[Any]:
    limit = max(1, min(limit, MAX_PAGE))
    if before is not None:
        stmt = stmt.where(id_col < before)
    rows = list(ctx.session.scalars(stmt.order_by(id_col.desc()).limit(limit + 1)))
    if len(rows) > limit:
        return Found(rows[:limit], rows[limit - 1].id)
    return Found(rows)


def _time(stmt: Any, at: Any, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(at >= since)
    if until is not None:
        stmt = stmt.where(at < until)
    return stmt


def audit_filter_errors(
    ctx: ProvinceContext, f: AuditFilter, before: int | None = None
) -> tuple[list[FieldError], str | None]:
    """Every bad value of an audit-trail filter (the pages show them all at once), and the unit filter's path."""
    errors: list[FieldError | None] = [_period(f.since, f.until), _text("username", f.username, "用户名")]
    errors.append(_check_before(before))
    if f.action is not None and f.action not in ACTIONS:
        errors.append(_error("action", "没有这种操作类型，请从列表中选择", "unknown action", f.action))
    if f.teacher_number is not None:
        try:
            check_teacher_number(f.teacher_number)
        except MalformedError:
            errors.append(
                _error(
                    "teacher_number",
                    "教师编号为 13 位：省份代码开头的 12 位数字加 1 位校验码（数字或 X），请核对",
                    "not a teacher number (12 digits and a check character)",
                    f.teacher_number,
                )
            )
    found_errors = [e for e in errors if e is not None]
    return found_errors, _unit_path(ctx, f.unit_id, found_errors)


def audit_events(
    ctx: ProvinceContext, f: AuditFilter = AuditFilter(), *, before: int | None = None, limit: int = 50
) -> Found[AuditEvent]:
    """A page of the audit trail of the actor's subtree, newest first."""
    authorize(ctx, Operation.AUDIT_READ)
    errors, unit_path = audit_filter_errors(ctx, f, before)
    _raise(errors)
    stmt = select(AuditEvent).where(AuditEvent.unit_path.startswith(ctx.user.unit_path, autoescape=True))
    if unit_path is not None:
        stmt = stmt.where(AuditEvent.unit_path.startswith(unit_path, autoescape=True))
    if f.action:
        stmt = stmt.where(AuditEvent.action == f.action)
    if f.username is not None:
        stmt = stmt.where(AuditEvent.actor_id.in_(select(ACCOUNT.c.id).where(ACCOUNT.c.username == f.username)))
    if f.teacher_number:
        about: ColumnElement[bool] = (AuditEvent.target_type == "teacher") & (AuditEvent.target_id == f.teacher_number)
        stmt = stmt.where(or_(about, AuditEvent.details["teacher"].as_string() == f.teacher_number))
    stmt = _time(stmt, AuditEvent.at, f.since, f.until)
    return _page(ctx, stmt, AuditEvent.id, before, limit)


def login_filter_errors(
    ctx: ProvinceContext, f: LoginFilter, before: int | None = None
) -> tuple[list[FieldError], str | None]:
    """Every bad value of a login-log filter, and the unit filter's path."""
    errors: list[FieldError | None] = [
        _period(f.since, f.until),
        _text("username", f.username, "用户名"),
        _text("address", f.address, "地址"),
        _check_before(before),
    ]
    if f.outcome is not None and f.outcome != FAILURES and f.outcome not in LoginOutcome._value2member_map_:
        errors.append(_error("outcome", "没有这种登录结果，请从列表中选择", "unknown outcome", f.outcome))
    if f.channel is not None and f.channel not in Channel._value2member_map_:
        errors.append(_error("channel", "没有这种登录方式，请从列表中选择", "unknown channel", f.channel))
    found_errors = [e for e in errors if e is not None]
    return found_errors, _unit_path(ctx, f.unit_id, found_errors)


def login_events(
    ctx: ProvinceContext, f: LoginFilter = LoginFilter(), *, before: int | None = None, limit: int = 50
) -> Found[LoginEvent]:
    """A page of the login log: the accounts of the actor's subtree (those with the login-log right), or the
    actor's own attempts (everyone else), newest first."""
    actor = ctx.user
    errors, unit_path = login_filter_errors(ctx, f, before)
    _raise(errors)
    stmt = select(LoginEvent)
    if not f.own and rule_for(Operation.LOGIN_LOG_READ, actor.role, actor.unit_level) is not None:
        stmt = stmt.where(
            or_(
                LoginEvent.unit_path.startswith(actor.unit_path, autoescape=True),
                LoginEvent.account_id == actor.account_id,
            )
        )
    else:
        stmt = stmt.where(LoginEvent.account_id == actor.account_id)
    if unit_path is not None:
        stmt = stmt.where(LoginEvent.unit_path.startswith(unit_path, autoescape=True))
    if f.outcome == FAILURES:
        stmt = stmt.where(LoginEvent.outcome.in_([o.value for o in LoginOutcome if o.failure]))
    elif f.outcome:
        stmt = stmt.where(LoginEvent.outcome == f.outcome)
    if f.channel:
        stmt = stmt.where(LoginEvent.channel == f.channel)
    if f.username is not None:
        stmt = stmt.where(LoginEvent.username == f.username)
    if f.address is not None:
        stmt = stmt.where(LoginEvent.address == f.address)
    stmt = _time(stmt, LoginEvent.at, f.since, f.until)
    return _page(ctx, stmt, LoginEvent.id, before, limit)


def previous_sign_in(ctx: ProvinceContext) -> dict[str, Any] | None:
    """The actor's successful sign-in before the newest one (首页: 上次登录 — the newest is usually the session
    being used), as :func:`login_rows` shows it; None for a first sign-in."""
    found = login_events(ctx, LoginFilter(outcome=LoginOutcome.SUCCESS, own=True), limit=2)
    rows = login_rows(ctx, found.rows)
    return rows[1] if len(rows) > 1 else None


def names(ctx: ProvinceContext, account_ids: Iterable[int | None], unit_paths: Iterable[str]) -> Names:
    """Usernames and real names of the accounts, names of the units (by path) the entries of a page show."""
    ids = {i for i in account_ids if i is not None}
    paths = set(unit_paths)
    accounts: dict[int, tuple[str, str]] = {}
    units: dict[str, str] = {}
    if ids:
        rows = ctx.session.execute(
            select(ACCOUNT.c.id, ACCOUNT.c.username, ACCOUNT.c.real_name).where(ACCOUNT.c.id.in_(ids))
        )
        accounts = {r.id: (r.username, r.real_name) for r in rows}
    if paths:
        rows = ctx.session.execute(select(UNIT.c.path, UNIT.c.name).where(UNIT.c.path.in_(paths)))
        units = {r.path: r.name for r in rows}
    return Names(accounts, units)


def units_in_scope(ctx: ProvinceContext, limit: int = 2000) -> list[Any]:
    """The units of the actor's subtree (id, name, code, path), in tree order: the unit filter's choices."""
    stmt = (
        select(UNIT.c.id, UNIT.c.name, UNIT.c.code, UNIT.c.path)
        .where(UNIT.c.path.startswith(ctx.user.unit_path, autoescape=True))
        .order_by(UNIT.c.path)
        .limit(limit)
    )
    return list(ctx.session.execute(stmt))


def flagged_reads(ctx: ProvinceContext, events: Sequence[AuditEvent]) -> set[int]:
    """The ids of the ``file.read`` events among ``events`` that an ``alert.read_volume`` of the actor's subtree
    concerns: reads by the alerted account in the hour before the alert (which counted them) or the hour after
    it (which raised no second alert)."""
    reads = [e for e in events if e.action == "file.read" and e.actor_id is not None]
    if not reads:
        return set()
    first, last = min(e.at for e in reads), max(e.at for e in reads)
    alerts = ctx.session.execute(
        select(AuditEvent.target_id, AuditEvent.at).where(
            AuditEvent.action == READ_ALERT,
            AuditEvent.target_type == "account",
            AuditEvent.target_id.in_({str(e.actor_id) for e in reads}),
            AuditEvent.at >= first - READ_WINDOW,
            AuditEvent.at <= last + READ_WINDOW,
            AuditEvent.unit_path.startswith(ctx.user.unit_path, autoescape=True),
        )
    ).all()
    by_account: dict[str, list[dt.datetime]] = {}
    for target, at in alerts:
        by_account.setdefault(target, []).append(at)
    return {
        e.id
        for e in reads
        if any(at - READ_WINDOW < e.at <= at + READ_WINDOW for at in by_account.get(str(e.actor_id), ()))
    }


def audit_rows(ctx: ProvinceContext, events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """The events as the API and the pages show them: with the acting account's name, the unit's name, the
    action's Chinese name, the alert flag, and every ID-number-like text masked."""
    n = names(ctx, (e.actor_id for e in events), (e.unit_path for e in events))
    flags = flagged_reads(ctx, events)
    out = []
    for e in events:
        username, real_name = n.accounts.get(e.actor_id, (None, None)) if e.actor_id is not None else (None, None)
        out.append(
            {
                "id": e.id,
                "seq": e.seq,
                "at": e.at,
                "actor_id": e.actor_id,
                "actor_username": username,
                "actor_name": real_name,
                "action": e.action,
                "action_label": action_label(e.action),
                "target_type": e.target_type,
                "target_label": target_label(e.target_type),
                "target_id": mask_id_numbers_in(e.target_id),
                "unit_path": e.unit_path,
                "unit_name": n.units.get(e.unit_path, ""),
                "reason": mask_id_numbers_in(e.reason),
                "details": mask_id_numbers_in(e.details or {}),
                "flagged": e.id in flags,
                "alert": e.action == READ_ALERT,
                "hash": e.hash,
            }
        )
    return out


def login_rows(ctx: ProvinceContext, events: Sequence[LoginEvent]) -> list[dict[str, Any]]:
    """The login events as the API and the pages show them (an ID-number-like username masked)."""
    n = names(ctx, (e.account_id for e in events), (e.unit_path for e in events))
    return [
        {
            "id": e.id,
            "at": e.at,
            "username": mask_id_numbers_in(e.username),
            "real_name": n.accounts.get(e.account_id, (None, ""))[1] if e.account_id is not None else "",
            "account_id": e.account_id,
            "address": e.address,
            "channel": e.channel,
            "channel_label": Channel.label_of(e.channel),
            "outcome": e.outcome,
            "outcome_label": LoginOutcome.label_of(e.outcome),
            "failure": e.outcome in {o.value for o in LoginOutcome if o.failure},
            "unit_name": n.units.get(e.unit_path, ""),
        }
        for e in events
    ]
