"""Import and export spreadsheets (Excel xlsx or CSV) of teacher files: templates, reading, writing.

Templates: one per record group. Columns are headed ``中文名(CODE)`` — readable for users, unambiguous for
the parser — and the first column identifies the teacher: ``身份证件类型(SFZJLXM)`` + ``身份证件号(SFZJH)``
for 基本信息 (new files are registered from it) or ``教师编号(JSBH)`` for the other groups. The xlsx
template formats every column as text (Excel then keeps ``01`` as ``01``) and has a second sheet ``代码表``
with every code list the group uses.

Reading a file:

* xlsx, or CSV in UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), or GB18030/GBK
  (what "CSV" means in Excel on Chinese Windows) — detected, and named in the result's ``encoding``; a CSV
  in none of these is refused with how to save it as UTF-8. Comma, tab or semicolon separated.
* bounded: at most ``TMIS_IMPORT_MAX_BYTES`` bytes (413 ``payload_too_large``) and ``TMIS_IMPORT_MAX_ROWS``
  data rows; an xlsx whose content would unpack to more than ten times the byte limit is refused unread.
* code cells accept the code (``01``), the code as Excel stores a number (``1`` for ``01``, where exactly one
  code of the table matches), the Chinese label (``汉族``) or both (``01 汉族``).
* optional columns ``学校标识码(XXBSM)`` and ``学校名称(XXMC)`` (exports carry them): a filled 学校标识码
  must be the school being imported into; the name is not read.

Writing: :func:`common.text.csv_bytes` and :func:`xlsx_bytes` make every text cell inert for spreadsheets
(:mod:`common.text`: formula-like values, stored control characters).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

from common.catalogue import Catalogue, CodeTable, FieldDef, RecordGroup
from common.errors import (
    ErrorCode,
    FieldError,
    TmisError,
    ValidationError,
)
from common.text import formula_like, scrub, strip_neutraliser
from provincial_node.context import ProvinceContext

KEY_NUMBER = ("JSBH", "教师编号")
SCHOOL_CODE = ("XXBSM", "学校标识码")
SCHOOL_NAME = ("XXMC", "学校名称")
HEADER_RE = re.compile(r"^\s*(.*?)\s*[（(]\s*([A-Z][A-Z0-9_]*)\s*[)）]\s*\Z")
SAVE_AS_UTF8_ZH = (
    "请在 Excel 中「文件 → 另存为」，文件类型选「CSV UTF-8(逗号分隔)(*.csv)」后重新上传，或直接上传 xlsx 文件"
)
SAVE_AS_UTF8_EN = (
    'in Excel use "File → Save As" with the type "CSV UTF-8 (Comma delimited) (*.csv)", or upload the xlsx'
)
UNPACK_RATIO = 10  # an xlsx may unpack to at most this many times the byte limit
Progress = Callable[[int, int], None]


def columns(group: RecordGroup) -> list[FieldDef]:
    return [f for f in group.fields if f.filled_by != "workflow" and not f.retired]


def heading(code: str, label: str) -> str:
    return f"{label}({code})"


def header_row(group: RecordGroup) -> list[str]:
    key = [] if group.code == "JBXX" else [heading(*KEY_NUMBER)]
    return key + [heading(f.code, f.label) + ("*" if f.required else "") for f in columns(group)]


def template(ctx: ProvinceContext, group_code: str, fmt: str) -> bytes:
    """The import template of one record group (xlsx with text columns and a 代码表 sheet, or CSV with a BOM)."""
    full = ctx.catalogue
    group = full.group(group_code.upper())
    headers = header_row(group)
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerow(headers)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 CSV correctly
    if fmt != "xlsx":
        raise ValidationError(
            "format must be xlsx or csv",
            [bad_cell("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")],
        )
    wb = Workbook()
    ws = wb.active
    ws.title = f"{group.code} {group.label}"[:31]
    ws.append(headers)
    for i in range(1, len(headers) + 1):  # text columns: Excel keeps 01 as 01 and an ID number whole
        letter = ws.cell(row=1, column=i).column_letter
        ws.column_dimensions[letter].number_format = "@"
        ws.column_dimensions[letter].width = max(12, len(headers[i - 1]) * 2)
    codes = wb.create_sheet("代码表")
    codes.append(["字段", "代码表", "代码", "名称"])
    for f in columns(group):
        if f.code_table:
            for c in full.table(f.code_table).codes.values():
                codes.append([heading(f.code, f.label), f.code_table, c.code, c.label])
    _dropdowns(wb, ws, group, full, offset=len(headers) - len(columns(group)))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


TEMPLATE_ROWS = 5000  # rows of the template that offer the dropdowns


def _dropdowns(wb: Any, ws: Any, group: RecordGroup, full: Catalogue, offset: int) -> None:
    """A dropdown (data validation list of ``code label``) on every single-code column, from a hidden sheet
    ``选项``; typing a code or a label by hand stays allowed (the import accepts all three forms)."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    options = wb.create_sheet("选项")
    options.sheet_state = "hidden"
    used: dict[str, str] = {}
    for i, f in enumerate(columns(group), start=offset + 1):
        if f.type != "code" or not f.code_table:
            continue
        if f.code_table not in used:
            col = get_column_letter(len(used) + 1)
            values = [f"{c.code} {c.label}" for c in full.table(f.code_table).codes.values()]
            for r, v in enumerate(values, start=1):
                options[f"{col}{r}"] = v
            used[f.code_table] = f"'选项'!${col}$1:${col}${len(values)}"
        dv = DataValidation(type="list", formula1=used[f.code_table], allow_blank=True, showErrorMessage=False)
        letter = get_column_letter(i)
        dv.add(f"{letter}2:{letter}{TEMPLATE_ROWS}")
        ws.add_data_validation(dv)


def bad_cell(column: str, value: Any, zh: str, en: str, row: int | None = None, field: str = "") -> FieldError:
    """A problem of an import file, located by row (as the user sees it) and column heading."""
    if isinstance(value, str):
        value = scrub(value)
    return FieldError("import", field, zh, en, value, label=column, row=row, column=column)


# ------------------------------------------------------------------------------------------- reading


def too_large(what: str, size: int, limit: int) -> TmisError:
    return TmisError(
        f"the import file is too large: {what} {size} > {limit}",
        code=ErrorCode.PAYLOAD_TOO_LARGE,
        http_status=413,
        details={"limit": limit, "size": size, "what": what},
    )


def _decode_csv(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a CSV file: UTF-8, UTF-16 with BOM, or GB18030 (a superset of GBK and GB2312)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            pass
    raise ValidationError(
        "the CSV file is in no supported encoding (UTF-8, UTF-16, GB18030/GBK)",
        [
            bad_cell(
                "",
                None,
                "无法识别 CSV 文件的编码（支持 UTF-8、GBK/GB18030）。" + SAVE_AS_UTF8_ZH,
                "the CSV file's encoding is not UTF-8, UTF-16 or GB18030/GBK; " + SAVE_AS_UTF8_EN,
            )
        ],
    )


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _too_many_rows(limit: int) -> ValidationError:
    return ValidationError(
        f"the import file has more than {limit} data rows",
        [
            bad_cell(
                "",
                None,
                f"文件超过 {limit} 行数据，请拆分成多个文件分别导入",
                f"the file has more than {limit} data rows; split it",
            )
        ],
    )


def read_rows(
    data: bytes, fmt: str, *, max_rows: int = 50_000, max_bytes: int = 16 * 1024 * 1024
) -> tuple[list[str], list[tuple[int, list[Any]]], str]:
    """(headers, [(row number as the user sees it, cells)], encoding) of the first sheet / the CSV."""
    if len(data) > max_bytes:
        raise too_large("bytes", len(data), max_bytes)
    if fmt == "csv":
        text, encoding = _decode_csv(data)
        lines = iter(text.lstrip("\ufeff").splitlines(keepends=True))
        first = next(lines, "")
        reader = csv.reader(_chain(first, lines), delimiter=_delimiter(first))
        headers = [h.strip() for h in next(reader, [])]
        out: list[tuple[int, list[Any]]] = []
        for i, r in enumerate(reader, start=2):
            if any(c.strip() for c in r):
                out.append((i, r))
                if len(out) > max_rows:
                    raise _too_many_rows(max_rows)
        return headers, out, encoding
    if fmt != "xlsx":
        raise ValidationError(
            "format must be xlsx or csv",
            [bad_cell("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")],
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError):
        unpacked = 0  # not a zip: load_workbook says so below
    if unpacked > UNPACK_RATIO * max_bytes:
        raise too_large("unpacked bytes", unpacked, UNPACK_RATIO * max_bytes)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise ValidationError(
            "not a readable xlsx file",
            [bad_cell("", None, "不是有效的 xlsx 文件", f"not a readable xlsx file: {type(e).__name__}")],
        ) from None
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        headers = [str(h or "").strip() for h in next(it, [])]
        out = []
        for i, r in enumerate(it, start=2):
            if any(c not in (None, "") for c in r):
                out.append((i, list(r)))
                if len(out) > max_rows:
                    raise _too_many_rows(max_rows)
    finally:
        wb.close()
    return headers, out, "xlsx"


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


class CellProblem(Exception):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def code_of(table: CodeTable, text: str) -> str:
    """The code a cell means: the code, a number Excel stripped of its leading zeros (``1`` → ``01``, when
    exactly one code matches), the label, or ``code label``. Anything else is returned as it is (the
    validator then names the code table)."""
    t = text.strip()
    if t in table:
        return t
    parts = t.split(None, 1)
    if len(parts) == 2:
        head = _exact_or_padded(table, parts[0])
        if head is not None and table.label_of(head) == parts[1].strip():
            return head
    padded = _exact_or_padded(table, t)
    if padded is not None:
        return padded
    by_label = _unique_label(table, t)
    if by_label is not None:
        return by_label
    if len(parts) == 2:  # "01 汉族" with a label spelled differently: trust the code part
        head = _exact_or_padded(table, parts[0])
        if head is not None:
            return head
    return t


def _exact_or_padded(table: CodeTable, t: str) -> str | None:
    if t in table:
        return t
    if t.isdigit():
        matches = [c for c in table.codes if c.isdigit() and len(c) > len(t) and int(c) == int(t)]
        if len(matches) == 1:
            return matches[0]
    return None


def _unique_label(table: CodeTable, t: str) -> str | None:
    squeezed = re.sub(r"\s+", "", t)
    matches = [c.code for c in table.codes.values() if re.sub(r"\s+", "", c.label) == squeezed]
    return matches[0] if len(matches) == 1 else None


def cell_value(value: Any, f: FieldDef, full: Catalogue) -> Any:
    """Turn a spreadsheet cell into the value the validator expects."""
    if value is None:
        return None
    if f.type == "idno" and isinstance(value, int | float) and not isinstance(value, bool):
        raise CellProblem(
            "证件号被 Excel 存成了数字（长数字的末几位会丢失）：请把该列设为「文本」格式后重新输入",
            "Excel stored the document number as a number (long numbers lose their last digits): "
            "format the column as text and type it again",
        )
    if hasattr(value, "isoformat"):  # a date cell
        v = value.date() if hasattr(value, "date") and callable(value.date) else value
        return v.isoformat()[:7] if f.type == "yearmonth" else v.isoformat()[:10]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = strip_neutraliser(str(value).strip())
    if not text:
        return None
    if f.code_table and f.type in ("code", "codes"):
        table = full.table(f.code_table)
        if f.type == "codes":
            return [code_of(table, p) for p in re.split(r"[,，;；、]+", text) if p.strip()]
        return code_of(table, text)
    if f.type in ("integer", "year") and re.fullmatch(r"-?[0-9]{1,15}", text):
        return int(text)
    return text


# -------------------------------------------------------------------------------------------- the plan


def xlsx_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    """An xlsx workbook (one sheet per entry): text cells scrubbed of control characters, formula-like text
    written as text with Excel's quote prefix (shown and kept as text, never evaluated)."""
    wb = Workbook(write_only=True)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append([_xlsx_cell(ws, v) for v in r])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx_cell(ws: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = scrub(value)
    if not formula_like(value):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell
