"""安全审计 pages: 操作日志 (``/audit-log``) and 登录日志 (``/login-log``), each with a CSV download of what its
filters find (``/audit-log.csv``, ``/login-log.csv``: at most DOWNLOAD_LIMIT rows, the download itself recorded),
and every account's own 我的登录记录 (``/my-logins``). Thin: read the filter form, call :mod:`.search` (the API's
functions) with the request's context, render; a bad filter value comes back next to its input (422). Times are
typed and shown in Beijing time; a date alone means the whole day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from common.chinatime import CHINA
from common.errors import FieldError
from common.http import attachment
from common.text import csv_bytes
from provincial_node.audit_trail import search, trail
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
        elif isinstance(value, dict):  # e.g. a download's filters
            text = "，".join(f"{DETAIL_NAMES.get(k, k)}={v}" for k, v in value.items())
        elif isinstance(value, bool):
            text = "是" if value else "否"
        else:
            text = DETAIL_VALUES.get(key, {}).get(str(value), str(value))
        out.append((DETAIL_NAMES.get(key, key), text))
    return out


def _filters() -> dict[str, str]:
    """The page's filters, without its position (``before``): for the pager, the download and a download's own
    entry in the audit trail."""
    return {k: v for k, v in request.args.items() if k != "before" and v}


def _outcomes() -> list[tuple[str, str]]:
    """The outcome picker: every failed kind at once, then each outcome."""
    return [(search.FAILURES, "全部失败"), *LoginOutcome.choices()]


def _listing(endpoint: str, found: Any) -> dict[str, Any]:
    """The pager's links: 更早 (the next, older page) and 最新 (back to the first page), keeping the filters."""
    params = _filters()
    return {
        "older_url": url_for(endpoint, **params, before=found.next_before) if found.next_before else None,
        "newest_url": url_for(endpoint, **params) if request.args.get("before") else None,
    }


def _audit_form(ctx: Any, errors: list[FieldError]) -> tuple[search.AuditFilter, int | None]:
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
    return f, before


def _login_form(ctx: Any, errors: list[FieldError]) -> tuple[search.LoginFilter, int | None]:
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
    return f, before


@bp.get("/audit-log")
def audit_log() -> Any:
    """操作日志: the audit trail of the user's unit and the units below, newest first, 50 a page."""
    return _audit_page()


def _audit_page(download_error: str | None = None) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.AUDIT_READ)
    errors: list[FieldError] = []
    f, before = _audit_form(ctx, errors)
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
        download_error=download_error,
        download_url=_download_url(".audit_log_csv") if rows else None,
        groups=GROUPS,
        units=search.units_in_scope(ctx),
        **_listing(".audit_log", found),
    )
    return page, (422 if errors or download_error else 200)


@bp.get("/login-log")
def login_log() -> Any:
    """登录日志: login attempts on the accounts of the user's unit and the units below, newest first."""
    return _login_page()


def _login_page(download_error: str | None = None) -> Any:
    ctx = current_context()
    authorize(ctx, Operation.LOGIN_LOG_READ)
    errors: list[FieldError] = []
    f, before = _login_form(ctx, errors)
    rows: list[dict[str, Any]] = []
    found = search.Found[Any]([])
    if not errors:
        found = search.login_events(ctx, f, before=before, limit=PAGE_SIZE)
        rows = search.login_rows(ctx, found.rows)
    page = render_template(
        "audit_trail/login_log.html",
        rows=rows,
        form=request.args,
        errors={e.field: e.reason_zh for e in errors},
        download_error=download_error,
        download_url=_download_url(".login_log_csv") if rows else None,
        outcomes=_outcomes(),
        channels=Channel.choices(),
        units=search.units_in_scope(ctx),
        **_listing(".login_log", found),
    )
    return page, (422 if errors or download_error else 200)


# ------------------------------------------------------------------------------------------- CSV downloads

DOWNLOAD_LIMIT = 100_000  # rows: more is a period to split, not one spreadsheet
TOO_MANY = f"符合条件的记录超过 {DOWNLOAD_LIMIT:,} 条，一次下载不了：请缩小时间范围或增加筛选条件后分次下载。"
AUDIT_COLUMNS = (
    *("序号", "时间（北京时间）", "用户名", "姓名", "操作", "对象类型", "对象", "单位", "原因", "详情"),
    *("预警", "哈希"),
)
LOGIN_COLUMNS = ("时间（北京时间）", "用户名", "姓名", "单位", "结果", "登录方式", "地址")


def _download_url(endpoint: str) -> str:
    """The download of what the page lists: its filters, every page of them."""
    return url_for(endpoint, **_filters())


def _beijing(at: dt.datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _every(fetch: Callable[[int | None], Any], shape: Callable[[Any], list[dict[str, Any]]]) -> list | None:
    """Every entry the filter finds, newest first, as the pages show them; None when more than DOWNLOAD_LIMIT."""
    out: list[dict[str, Any]] = []
    before = None
    while True:
        found = fetch(before)
        out += shape(found.rows)
        if len(out) > DOWNLOAD_LIMIT:
            return None
        if found.next_before is None:
            return out
        before = found.next_before


def _csv(name: str, data: bytes) -> Response:
    stamp = dt.datetime.now(CHINA).strftime("%Y%m%d-%H%M")
    return Response(
        data, mimetype="text/csv; charset=utf-8", headers={"Content-Disposition": attachment(f"{name}-{stamp}.csv")}
    )


@bp.get("/audit-log.csv")
def audit_log_csv() -> Any:
    """操作日志 as a CSV file (UTF-8 with BOM, for Excel): every entry the page's filters find, newest first."""
    ctx = current_context()
    authorize(ctx, Operation.AUDIT_READ)
    errors: list[FieldError] = []
    f, _before = _audit_form(ctx, errors)
    if errors:
        return _audit_page()  # the page, each bad value under its field (422)
    rows = _every(
        lambda before: search.audit_events(ctx, f, before=before, limit=search.MAX_PAGE),
        lambda events: search.audit_rows(ctx, events),
    )
    if rows is None:
        return _audit_page(TOO_MANY)
    trail.record(ctx, "audit.download", "log", "操作日志", ctx.user.unit_path, rows=len(rows), filters=_filters())
    body = [
        (
            r["seq"],
            _beijing(r["at"]),
            r["actor_username"] or "（系统）",
            r["actor_name"] or "",
            r["action_label"],
            r["target_label"],
            r["target_id"],
            r["unit_name"],
            r["reason"] or "",
            "；".join(f"{k}：{v}" for k, v in _detail_items(r["details"])),
            "是" if r["flagged"] or r["alert"] else "",
            r["hash"],
        )
        for r in rows
    ]
    return _csv("操作日志", csv_bytes([AUDIT_COLUMNS, *body]))


@bp.get("/login-log.csv")
def login_log_csv() -> Any:
    """登录日志 as a CSV file: every attempt the page's filters find, newest first."""
    ctx = current_context()
    authorize(ctx, Operation.LOGIN_LOG_READ)
    errors: list[FieldError] = []
    f, _before = _login_form(ctx, errors)
    if errors:
        return _login_page()
    rows = _every(
        lambda before: search.login_events(ctx, f, before=before, limit=search.MAX_PAGE),
        lambda events: search.login_rows(ctx, events),
    )
    if rows is None:
        return _login_page(TOO_MANY)
    trail.record(ctx, "login_log.download", "log", "登录日志", ctx.user.unit_path, rows=len(rows), filters=_filters())
    body = [
        (
            _beijing(r["at"]),
            r["username"],
            r["real_name"],
            r["unit_name"] if r["account_id"] is not None else "（无此账号）",
            r["outcome_label"],
            r["channel_label"],
            r["address"],
        )
        for r in rows
    ]
    return _csv("登录日志", csv_bytes([LOGIN_COLUMNS, *body]))


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
        outcomes=_outcomes(),
        **_listing(".my_logins", found),
    )
    return page, (422 if errors else 200)


BLUEPRINTS = (bp,)
