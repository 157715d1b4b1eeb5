"""Times as users read them: 北京时间 (UTC+8). Everything is stored in UTC; pages, messages and reports show
Beijing time through this one function."""

from __future__ import annotations

import datetime as dt

CHINA = dt.timezone(dt.timedelta(hours=8), "北京时间")


def china_time(value: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` (UTC; a naive value is taken as UTC, as SQLite returns it; or an ISO 8601 string, as records
    in JSON keep it) in Beijing time, formatted."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(CHINA).strftime(fmt)
