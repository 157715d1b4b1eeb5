"""Times as users read them: 北京时间 (UTC+8). Everything is stored in UTC; pages, messages and reports show
Beijing time through this one function."""

from __future__ import annotations

import datetime as dt

CHINA = dt.timezone(dt.timedelta(hours=8), "北京时间")


def china_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` (UTC; a naive value is taken as UTC, as SQLite returns it) in Beijing time, formatted."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(CHINA).strftime(fmt)
