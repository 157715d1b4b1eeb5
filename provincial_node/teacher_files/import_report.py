"""The import's error report as a spreadsheet: the user's own rows back, every bad cell filled red with the
reason as a cell comment, a 错误说明 column at the end of each bad row — so the school fixes the file it has and
imports it again."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import PatternFill

BAD = PatternFill(start_color="FFF4CCCC", end_color="FFF4CCCC", fill_type="solid")


def _rows(data: bytes, fmt: str) -> list[list[Any]]:
    if fmt == "csv":
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return list(csv.reader(io.StringIO(data.decode(encoding))))
            except UnicodeDecodeError:
                continue
        return []
    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def error_workbook(data: bytes, fmt: str, errors: list[dict[str, Any]]) -> bytes:
    """The uploaded file's rows with the bad cells marked (``errors``: the import result's row errors)."""
    rows = _rows(data, fmt)
    headers = [str(h or "").strip() for h in (rows[0] if rows else [])]
    by_row: dict[int, list[dict[str, Any]]] = {}
    for e in errors:
        if e.get("row"):
            by_row.setdefault(int(e["row"]), []).append(e)
    wb = Workbook()
    ws = wb.active
    ws.title = "导入错误报告"
    ws.append([*headers, "错误说明"])
    note_col = len(headers) + 1
    for number, row in enumerate(rows[1:], start=2):
        ws.append(list(row) + [None] * (len(headers) - len(row)))
        problems = by_row.get(number)
        if not problems:
            continue
        texts = []
        for e in problems:
            column = str(e.get("column") or "").rstrip("*")
            idx = next((i for i, h in enumerate(headers) if h.rstrip("*") == column or h == e.get("column")), None)
            texts.append(f"{column or '整行'}：{e.get('reason_zh')}")
            if idx is not None:
                cell = ws.cell(row=number, column=idx + 1)
                cell.fill = BAD
                cell.comment = Comment(str(e.get("reason_zh") or ""), "教师系统")
        ws.cell(row=number, column=note_col, value="；".join(texts)).fill = BAD
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
