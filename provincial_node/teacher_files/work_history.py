"""工作经历 and 交流轮岗 records that workflows write into a file (the file area owns the shape of its data;
the transfers area decides *when*).

All functions change the ``data`` dict they are given; the caller then writes it through
:func:`provincial_node.teacher_files.effective.write_effective`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from common.catalogue.codes import PersonStatus, WorkUnitNature


def month_of(now: dt.datetime) -> str:
    """``YYYY-MM`` of a moment (the year-month fields of 工作经历 and 交流轮岗)."""
    return f"{now.year:04d}-{now.month:02d}"


def close_work(data: dict[str, Any], from_name: str, month: str) -> None:
    """工作经历: end the entry of the school the teacher leaves (or add it, from 进本校年月)."""
    rows = data.setdefault("GZJL", [])
    for row in rows:
        if row.get("RZDWMC") == from_name and not row.get("RZJSNY"):
            row["RZJSNY"] = month
    if not any(r.get("RZDWMC") == from_name for r in rows):
        start = data.get("JBXX", {}).get("JBXNY", month)
        rows.append({"RZDWMC": from_name, "RZKSNY": start, "RZJSNY": month, "DWXZLBM": WorkUnitNature.SCHOOL.value})


def open_work(data: dict[str, Any], to_name: str, month: str) -> None:
    """工作经历: the entry of the new school; 进本校年月 is this month."""
    data.setdefault("GZJL", []).append({"RZDWMC": to_name, "RZKSNY": month, "DWXZLBM": WorkUnitNature.SCHOOL.value})
    data.setdefault("JBXX", {})["JBXNY"] = month


def rotation_record(
    data: dict[str, Any],
    *,
    rotation_type: str | None,
    with_transfer: bool,
    start_month: str | None,
    end_month: str | None,
    from_name: str,
    to_name: str | None,
) -> None:
    """交流轮岗: the rotation record of a completed rotation."""
    values = {
        "JLLGLXM": rotation_type,
        "SFDDRSGX": "1" if with_transfer else "0",
        "KSNY": start_month,
        "JSNY": end_month,
        "YDWMC": from_name,
        "JLLGDWMC": to_name,
    }
    data.setdefault("JLLG", []).append({k: v for k, v in values.items() if v})


def end_rotation_record(data: dict[str, Any], start_month: str | None, month: str) -> None:
    """交流轮岗 ends: the open rotation record that started in ``start_month`` gets its end month."""
    for row in reversed(data.get("JLLG", [])):
        if row.get("KSNY") == start_month and not row.get("JSNY"):
            row["JSNY"] = month
            break


def set_person_status(data: dict[str, Any], status: PersonStatus) -> None:
    """人员状态 (JBXX.RYZTM), written by a workflow."""
    data.setdefault("JBXX", {})["RYZTM"] = status.value


def person_status(data: dict[str, Any]) -> str | None:
    return (data.get("JBXX") or {}).get("RYZTM")
