"""安全审计 pages: 操作日志 (``/audit-log``) and 登录日志 (``/login-log``), and every account's own 我的登录记录
(``/my-logins``). Thin: read the filter form, call
:mod:`.search` (the API's functions) with the request's context, render; a bad filter value comes back next to
its input (422). Times are typed and shown in Beijing time; a date alone means the whole day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, render_template, request, url_for

from common.chinatime import CHINA
from common.errors import FieldError
from provincial_node.audit_trail import search
from provincial_node.audit_trail.actions import DETAIL_NAMES, DETAIL_VALUES, GROUPS
from provincial_node.audit_trail.logins import Channel, LoginOutcome
from provincial_node.context import current_context
from provincial_node.rules import Operation, authorize

bp = Blueprint("audit_trail_pages", __name__, template_folder="templates")
PAGE_SIZE = 50
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
TIME_HINT = "请按 2026-03-01 或 2026-03-01 08:30 填写（北京时间）"


def _text(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value or None


def _time(name: str, *, end: bool, errors: list[FieldError]) -> dt.datetime | None:
    """A Beijing-time date or minute from the form, as UTC; the end of a period is exclusive: the day (or the
    minute) typed is included."""
    raw = _text(name)
    if raw is None:
        return None
    for fmt in TIME_FORMATS:
        try:
            value = dt.datetime.strptime(raw, fmt).replace(tzinfo=CHINA)
        except ValueError:
            continue
        if end:
            value += dt.timedelta(days=1) if fmt == "%Y-%m-%d" else dt.timedelta(minutes=1)
        return value.astimezone(dt.UTC)
    errors.append(FieldError("query", name, TIME_HINT, "not a date (YYYY-MM-DD) or a time (YYYY-MM-DD HH:MM)", raw))
    return None


def _id(name: str, reason_zh: str, errors: list[FieldError]) -> int | None:
    raw = _text(name)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 10:
        return int(raw)
    errors.append(FieldError("query", name, reason_zh, "not an id", raw))
    return None


def _others(errors: list[FieldError], more: list[FieldError]) -> list[FieldError]:
    """The service's errors about fields the form's own reading found no fault with: every bad value shows at
    once, one reason per field."""
    seen = {e.field for e in errors}
    return [e for e in more if e.field not in seen]


def _detail_items(details: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            text = "、".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "是" if value else "否"
        else:
            text = DETAIL_VALUES.get(key, {}).get(str(value), str(value))
        out.append((DETAIL_NAMES.get(key, key), text))
    return out


def _listing(endpoint: str, found: Any) -> dict[str, Any]:
    """The pager's links: 更早 (the next, older page) and 最新 (back to the first page), keeping the filters."""
    params = {k: v for k, v in request.args.items() if k != "before" and v}
    return {
        "older_url": url_for(endpoint, **params, before=found.next_before) if found.next_before else None,
        "newest_url": url_for(endpoint, **params) if request.args.get("before") else None,
    }


@bp.get("/audit-log")
def audit_log() -> Any:
    """操作日志: the audit trail of the user's unit and the units below, newest first, 50 a page."""
    ctx = current_context()
    authorize(ctx, Operation.AUDIT_READ)
    errors: list[FieldError] = []
    f = search.AuditFilter(
        since=_time("since", end=False, errors=errors),
        until=_time("until", end=True, errors=errors),
        username=_text("username"),
        action=_text("action"),
        unit_id=_id("unit_id", "请选择本单位或下级单位", errors),
        teacher_number=_text("teacher_number"),
    )
    before = _id("before", "翻页位置无效，请从第一页重新查询", errors)
    errors += _others(errors, search.audit_filter_errors(ctx, f, before)[0])
    rows: list[dict[str, Any]] = []
    found = search.Found[Any]([])
    if not errors:
        found = search.audit_events(ctx, f, before=before, limit=PAGE_SIZE)
        rows = search.audit_rows(ctx, found.rows)
    for row in rows:
        row["detail_items"] = _detail_items(row["details"])
    page = render_template(
        "audit_trail/audit_log.html",
        rows=rows,
        form=request.args,
        errors={e.field: e.reason_zh for e in errors},
        groups=GROUPS,
        units=search.units_in_scope(ctx),
        **_listing(".audit_log", found),
    )
    return page, (422 if errors else 200)


@bp.get("/login-log")
def login_log() -> Any:
    """登录日志: login attempts on the accounts of the user's unit and the units below, newest first."""
    ctx = current_context()
    authorize(ctx, Operation.LOGIN_LOG_READ)
    errors: list[FieldError] = []
    f = search.LoginFilter(
        since=_time("since", end=False, errors=errors),
        until=_time("until", end=True, errors=errors),
        username=_text("username"),
        outcome=_text("outcome"),
        channel=_text("channel"),
        address=_text("address"),
        unit_id=_id("unit_id", "请选择本单位或下级单位", errors),
    )
    before = _id("before", "翻页位置无效，请从第一页重新查询", errors)
    errors += _others(errors, search.login_filter_errors(ctx, f, before)[0])
    rows: list[dict[str, Any]] = []
    found = search.Found[Any]([])
    if not errors:
        found = search.login_events(ctx, f, before=before, limit=PAGE_SIZE)
        rows = search.login_rows(ctx, found.rows)
    outcomes = [(search.FAILURES, "全部失败"), *LoginOutcome.choices()]
    page = render_template(
        "audit_trail/login_log.html",
        rows=rows,
        form=request.args,
        errors={e.field: e.reason_zh for e in errors},
        outcomes=outcomes,
        channels=Channel.choices(),
        units=search.units_in_scope(ctx),
        **_listing(".login_log", found),
    )
    return page, (422 if errors else 200)


@bp.get("/my-logins")
def my_logins() -> Any:
    """我的登录记录: every account's own sign-ins, failed attempts under its username and sign-outs, newest first —
    for the user to notice an attempt that was not theirs (no access right needed beyond being signed in)."""
    ctx = current_context()
    errors: list[FieldError] = []
    f = search.LoginFilter(
        since=_time("since", end=False, errors=errors),
        until=_time("until", end=True, errors=errors),
        outcome=_text("outcome"),
        own=True,
    )
    before = _id("before", "翻页位置无效，请从第一页重新查询", errors)
    errors += _others(errors, search.login_filter_errors(ctx, f, before)[0])
    rows: list[dict[str, Any]] = []
    found = search.Found[Any]([])
    if not errors:
        found = search.login_events(ctx, f, before=before, limit=PAGE_SIZE)
        rows = search.login_rows(ctx, found.rows)
    page = render_template(
        "audit_trail/my_logins.html",
        rows=rows,
        form=request.args,
        errors={e.field: e.reason_zh for e in errors},
        outcomes=[(search.FAILURES, "全部失败"), *LoginOutcome.choices()],
        **_listing(".my_logins", found),
    )
    return page, (422 if errors else 200)


BLUEPRINTS = (bp,)
