"""Batch import and export of teacher files (批量导入导出), Excel (xlsx) or CSV.

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

Import rules:

* every row is validated by the catalogue validator (plus custom indicators) and goes through the same
  services as the API (scope, who-fills-what, review state, no change of effective information);
* a bad row is reported — its own row number, column, value, reason in Chinese and English — and
  **nothing** of it is written; good rows are written, each in its own savepoint;
* an empty cell leaves the stored value as it is (an import adds and corrects, it never clears);
* 基本信息 rows are keyed by identity document: the same document twice in one file is an error of the
  later row; a document not on file registers a new file;
* rows of a multi-record group are **merged by the group's record key** (``key`` in ``groups.toml``:
  年度考核 by 考核年度, 国内培训 by 培训年度 + 培训项目名称 …): a row whose key matches a record of the
  teacher's file updates that record (when that record is effective, this needs a change request and the
  row is refused, naming it); a row with a new key adds a record; records the file does not mention stay.
  The same teacher and key twice in one file is an error of the later row;
* importing the same file again changes nothing (every row ``unchanged``).

:func:`import_file` runs a whole file in the caller's transaction (the synchronous API and tests);
:func:`run_import_task` runs it as a background task (:mod:`provincial_node.tasks`) that commits every
``TMIS_IMPORT_CHUNK_ROWS`` rows, reports progress and stops between chunks when cancelled — rows of the
chunks before stay imported (re-importing the file reports them ``unchanged``).

Export writes the effective files of a unit's subtree, one sheet (or CSV) per group, with the school of
each teacher (学校标识码, 学校名称) and every code with its label (``01 汉族``), and is recorded in the
audit trail with who, when, what and why (数据导出有据可查). Every text cell is made inert for spreadsheets
(:mod:`common.text`: formula-like values, stored control characters).
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import select

from common.catalogue import Catalogue, CodeTable, FieldDef, RecordGroup
from common.catalogue.schema import build_validator
from common.errors import (
    ErrorCode,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    TmisError,
    ValidationError,
)
from common.identity import IdentityError, validate_identity
from common.text import csv_cell, formula_like, scrub, strip_neutraliser
from provincial_node.accounts import second_factor
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import BASIC_VIEW, Operation, View, authorize, mask_id_number
from provincial_node.tasks import service as tasks
from provincial_node.tasks.models import Task
from provincial_node.tasks.runner import TaskCancelled, TaskWork
from provincial_node.teacher_files import files
from provincial_node.teacher_files.models import Teacher

KEY_NUMBER = ("JSBH", "教师编号")
SCHOOL_CODE = ("XXBSM", "学校标识码")
SCHOOL_NAME = ("XXMC", "学校名称")
_HEADER = re.compile(r"^\s*(.*?)\s*[（(]\s*([A-Z][A-Z0-9_]*)\s*[)）]\s*\Z")
_SAVE_AS_UTF8_ZH = (
    "请在 Excel 中「文件 → 另存为」，文件类型选「CSV UTF-8(逗号分隔)(*.csv)」后重新上传，或直接上传 xlsx 文件"
)
_SAVE_AS_UTF8_EN = (
    'in Excel use "File → Save As" with the type "CSV UTF-8 (Comma delimited) (*.csv)", or upload the xlsx'
)
UNPACK_RATIO = 10  # an xlsx may unpack to at most this many times the byte limit
Progress = Callable[[int, int], None]


def _columns(group: RecordGroup) -> list[FieldDef]:
    return [f for f in group.fields if f.filled_by != "workflow" and not f.retired]


def _head(code: str, label: str) -> str:
    return f"{label}({code})"


def header_row(group: RecordGroup) -> list[str]:
    key = [] if group.code == "JBXX" else [_head(*KEY_NUMBER)]
    return key + [_head(f.code, f.label) + ("*" if f.required else "") for f in _columns(group)]


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
            "format must be xlsx or csv", [_bad("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")]
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
    for f in _columns(group):
        if f.code_table:
            for c in full.table(f.code_table).codes.values():
                codes.append([_head(f.code, f.label), f.code_table, c.code, c.label])
    _dropdowns(wb, ws, group, full, offset=len(headers) - len(_columns(group)))
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
    for i, f in enumerate(_columns(group), start=offset + 1):
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


def _bad(column: str, value: Any, zh: str, en: str, row: int | None = None, field: str = "") -> FieldError:
    """A problem of an import file, located by row (as the user sees it) and column heading."""
    if isinstance(value, str):
        value = scrub(value)
    return FieldError("import", field, zh, en, value, label=column, row=row, column=column)


# ------------------------------------------------------------------------------------------- reading


def _too_large(what: str, size: int, limit: int) -> TmisError:
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
            _bad(
                "",
                None,
                "无法识别 CSV 文件的编码（支持 UTF-8、GBK/GB18030）。" + _SAVE_AS_UTF8_ZH,
                "the CSV file's encoding is not UTF-8, UTF-16 or GB18030/GBK; " + _SAVE_AS_UTF8_EN,
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
            _bad(
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
        raise _too_large("bytes", len(data), max_bytes)
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
            "format must be xlsx or csv", [_bad("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")]
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError):
        unpacked = 0  # not a zip: load_workbook says so below
    if unpacked > UNPACK_RATIO * max_bytes:
        raise _too_large("unpacked bytes", unpacked, UNPACK_RATIO * max_bytes)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise ValidationError(
            "not a readable xlsx file",
            [_bad("", None, "不是有效的 xlsx 文件", f"not a readable xlsx file: {type(e).__name__}")],
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


class _CellProblem(Exception):
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


def _cell(value: Any, f: FieldDef, full: Catalogue) -> Any:
    """Turn a spreadsheet cell into the value the validator expects."""
    if value is None:
        return None
    if f.type == "idno" and isinstance(value, int | float) and not isinstance(value, bool):
        raise _CellProblem(
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


@dataclass
class ImportRow:
    """One data row of the file, parsed: cells become the values the validator expects."""

    row: int
    teacher_number: str
    school_code: str
    record: dict[str, Any]
    problems: list[FieldError] = field(default_factory=list)


@dataclass
class ImportPlan:
    """A checked, parsed import file: what :func:`apply_rows` works through (it holds no database object, so a
    task can apply it over several transactions)."""

    group_code: str
    school_id: int
    school_code: str
    fmt: str
    encoding: str
    headers: dict[str, str]
    rows: list[ImportRow]
    seen: dict[tuple[Any, ...], int] = field(default_factory=dict)  # (teacher, record key) → first row

    def new_result(self) -> dict[str, Any]:
        return {
            "group": self.group_code,
            "rows": len(self.rows),
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "failed": 0,
            "errors": [],
            "encoding": self.encoding,
        }


def prepare_import(ctx: ProvinceContext, school_id: int, group_code: str, data: bytes, fmt: str) -> ImportPlan:
    """Check who imports what where, read and parse the file; a problem of the file as a whole (size, encoding,
    headers) refuses it with nothing imported."""
    full = ctx.catalogue
    group = full.group(group_code.upper())
    school = unit_in_scope(ctx, school_id)
    authorize(ctx, Operation.FILES_IMPORT, school)
    build_validator(full, group.code, school_type=school.school_type)  # refuses a group the school does not collect
    if not _columns(group):
        raise ValidationError(
            f"{group.code} {group.label} is written by workflows and cannot be imported",
            [_bad("", group.code, "本信息集由业务流程写入，不能导入", "this group is written by workflows")],
        )
    settings = ctx.settings
    headers, rows, encoding = read_rows(
        data, fmt, max_rows=settings.import_max_rows, max_bytes=settings.import_max_bytes
    )
    by_code: dict[str, int] = {}
    errors: list[FieldError] = []
    for i, h in enumerate(headers):
        m = _HEADER.match(h.rstrip("*"))
        if m:
            by_code[m.group(2)] = i
        elif h:
            hint_zh = (
                ""
                if encoding in ("utf-8", "xlsx")
                else f"（文件按 {encoding} 编码读取；若表头是乱码，{_SAVE_AS_UTF8_ZH}）"
            )
            hint_en = (
                "" if encoding in ("utf-8", "xlsx") else f" (read as {encoding}; if it is garbled, {_SAVE_AS_UTF8_EN})"
            )
            errors.append(
                _bad(
                    h,
                    None,
                    "无法识别的列（表头应为 名称(代码)）" + hint_zh,
                    "unknown column (headers are Label(CODE))" + hint_en,
                    1,
                )
            )
    known = {f.code for f in group.fields} | {KEY_NUMBER[0], SCHOOL_CODE[0], SCHOOL_NAME[0]}
    errors += [
        _bad(headers[i], None, "该列不属于本信息集", "this column is not a field of the group", 1)
        for c, i in by_code.items()
        if c not in known
    ]
    key_cols = ["SFZJLXM", "SFZJH"] if group.code == "JBXX" else [KEY_NUMBER[0]]
    missing = [c for c in key_cols if c not in by_code]
    if missing:
        errors.append(
            _bad(",".join(missing), None, "缺少标识教师的列", "the columns identifying the teacher are missing", 1)
        )
    if errors:
        raise ValidationError(f"the {group.code} file's header is invalid; nothing imported", errors)
    fields = {f.code: f for f in group.fields}
    header_of = {code: headers[i] for code, i in by_code.items()}
    parsed: list[ImportRow] = []
    identities: dict[tuple[str, str], int] = {}
    for rowno, cells in rows:

        def cell(code: str, cells: list[Any] = cells) -> Any:
            i = by_code.get(code)
            return cells[i] if i is not None and i < len(cells) else None

        record: dict[str, Any] = {}
        problems: list[FieldError] = []
        for code in by_code:
            if code in fields:
                try:
                    value = _cell(cell(code), fields[code], full)
                except _CellProblem as p:
                    problems.append(_bad(header_of[code], cell(code), p.zh, p.en, rowno, code))
                    continue
                if value not in (None, "", []):
                    record[code] = value
        number = "" if group.code == "JBXX" else strip_neutraliser(str(cell(KEY_NUMBER[0]) or "").strip())
        school_code = strip_neutraliser(str(cell(SCHOOL_CODE[0]) or "").strip())
        if school_code and school_code != school.code:
            problems.append(
                _bad(
                    header_of[SCHOOL_CODE[0]],
                    school_code,
                    f"该行属于学校 {school_code}，不是本次导入的学校 {school.code}",
                    f"the row belongs to school {school_code}, not to {school.code} being imported",
                    rowno,
                    SCHOOL_CODE[0],
                )
            )
        if group.code == "JBXX" and record.get("SFZJH") and record.get("SFZJLXM"):
            ident = (str(record["SFZJLXM"]), str(record["SFZJH"]).strip().upper())
            first = identities.setdefault(ident, rowno)
            if first != rowno:
                problems.append(
                    _bad(
                        header_of["SFZJH"],
                        record["SFZJH"],
                        f"本文件第 {first} 行已有同一证件号：一个证件号只能出现一次",
                        f"row {first} of this file has the same identity document; it may appear only once",
                        rowno,
                        "SFZJH",
                    )
                )
        parsed.append(ImportRow(rowno, number, school_code, record, problems))
    return ImportPlan(group.code, school.id, school.code, fmt, encoding, header_of, parsed)


# ----------------------------------------------------------------------------------------- applying


def apply_rows(ctx: ProvinceContext, plan: ImportPlan, rows: Iterable[ImportRow], result: dict[str, Any]) -> None:
    """Import ``rows`` of the plan in the caller's transaction, each in its own savepoint; outcomes and
    errors are added to ``result``."""
    session = ctx.session
    group = ctx.catalogue.group(plan.group_code)
    school = session.get(Unit, plan.school_id)
    for row in rows:
        if row.problems:
            _fail(plan, result, row.row, row.problems)
            continue
        nested = session.begin_nested()
        try:
            outcome = _import_row(ctx, plan, school, group, row)
            nested.commit()
            result[outcome] += 1
        except files.DuplicateIdentityError as e:
            nested.rollback()
            files.report_duplicate(ctx, e)  # the bureau above sees the detail; the row error says only this:
            entry = FieldError("JBXX", "SFZJH", "该证件号已在本省建档", "already on file in the province")
            _fail(plan, result, row.row, [entry])
        except TmisError as e:
            nested.rollback()
            entries = e.field_errors or (FieldError("import", "", _zh_of(e), e.message),)
            _fail(plan, result, row.row, entries)


def _zh_of(e: TmisError) -> str:
    if e.message_zh:
        return e.message_zh
    if isinstance(e, NotFoundError):
        return "不存在或不在本账号的管辖范围内"
    if isinstance(e, PermissionDeniedError):
        return "本账号无权进行此操作"
    return e.message


def _fail(plan: ImportPlan, result: dict[str, Any], rowno: int, entries: Iterable[FieldError]) -> None:
    result["failed"] += 1
    for entry in entries:
        if entry.row is not None:  # already located (parse problems)
            result["errors"].append(entry.to_json())
            continue
        col = plan.headers.get(entry.field, entry.label or entry.field)
        result["errors"].append(_bad(col, entry.value, entry.reason_zh, entry.reason_en, rowno, entry.field).to_json())


def finish_import(ctx: ProvinceContext, plan: ImportPlan, result: dict[str, Any], **extra: Any) -> None:
    """The import's line in the audit trail (counts, not the rows)."""
    school = ctx.session.get(Unit, plan.school_id)
    counts = {k: v for k, v in result.items() if k not in ("errors",)}
    trail.record(ctx, "files.import", "unit", school.code, school.path, **counts, **extra)


def import_file(
    ctx: ProvinceContext,
    school_id: int,
    group_code: str,
    data: bytes,
    fmt: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import one group's rows for a school in the caller's transaction. See the module rules; returns counts
    and every row error."""
    plan = prepare_import(ctx, school_id, group_code, data, fmt)
    result = plan.new_result()
    total, step = len(plan.rows), max(1, ctx.settings.import_chunk_rows)
    for start in range(0, total, step):
        apply_rows(ctx, plan, plan.rows[start : start + step], result)
        if progress:
            progress(min(start + step, total), total)
    if progress and not total:
        progress(0, 0)
    finish_import(ctx, plan, result)
    return result


IMPORT_KIND = "files.import"


def start_import_task(ctx: ProvinceContext, school_id: int, group_code: str, data: bytes, fmt: str) -> Task:
    """Queue an import as a background task (批量导入). What can be checked at once is (who imports which group
    where, the file's size and format); reading the rows is the task's work, and a problem of the whole file
    (encoding, headers) ends the task ``failed`` with the field errors in its result."""
    full = ctx.catalogue
    group = full.group(group_code.upper())
    school = unit_in_scope(ctx, school_id)
    authorize(ctx, Operation.FILES_IMPORT, school)
    build_validator(full, group.code, school_type=school.school_type)
    if fmt not in ("xlsx", "csv"):
        raise ValidationError(
            "format must be xlsx or csv", [_bad("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")]
        )
    if len(data) > ctx.settings.import_max_bytes:
        raise _too_large("bytes", len(data), ctx.settings.import_max_bytes)
    if not data:
        raise ValidationError("the file is empty", [_bad("", None, "文件为空", "the file is empty")])
    params = {
        "school_id": school.id,
        "school_code": school.code,
        "group": group.code,
        "format": fmt,
        "bytes": len(data),
    }
    return tasks.start(ctx, IMPORT_KIND, school, params, payload=data)


def run_import_task(work: TaskWork) -> dict[str, Any]:
    """The import task: read and check the file (one step), then the rows, ``TMIS_IMPORT_CHUNK_ROWS`` per step
    (each step commits; a cancel stops between steps), then the audit-trail line."""
    p = work.params
    with work.step() as ctx:
        plan = prepare_import(ctx, p["school_id"], p["group"], work.payload or b"", p["format"])
        step = max(1, ctx.settings.import_chunk_rows)
    result = plan.new_result()
    total = len(plan.rows)
    work.report(0, total, result)
    try:
        for start in range(0, total, step):
            with work.step() as ctx:
                apply_rows(ctx, plan, plan.rows[start : start + step], result)
                work.report(min(start + step, total), total, result)
    except TaskCancelled:
        with work.final() as ctx:  # the rows imported so far are in the audit trail too
            finish_import(ctx, plan, result, task=work.task_id, cancelled=True)
        raise
    with work.step() as ctx:
        finish_import(ctx, plan, result, task=work.task_id)
    return result


IMPORT_TASK = tasks.TaskHandler(IMPORT_KIND, "批量导入", run_import_task)


def _import_row(ctx: ProvinceContext, plan: ImportPlan, school: Unit, group: RecordGroup, row: ImportRow) -> str:
    if group.code == "JBXX":
        return _import_basic(ctx, school, row.record)
    session = ctx.session
    teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == row.teacher_number))
    if teacher is None or teacher.unit_id != school.id:
        raise ValidationError(
            "unknown teacher number for this school",
            [
                FieldError(
                    group.code,
                    KEY_NUMBER[0],
                    "本单位没有该教师编号",
                    "no such teacher at this school",
                    row.teacher_number,
                )
            ],
        )
    before = copy.deepcopy(teacher.draft)
    if not group.multiple:
        files.update_group(ctx, teacher.id, group.code, {**(teacher.draft.get(group.code) or {}), **row.record})
        return "unchanged" if teacher.draft == before else "updated"
    validator = build_validator(ctx.catalogue, group.code, school_type=school.school_type)
    normalised = validator.validate(row.record, partial=True).data
    key = group.record_key(normalised)
    first = plan.seen.setdefault((teacher.teacher_number, key), row.row)
    if first != row.row:
        raise ValidationError(
            "the same record twice in one file",
            [
                FieldError(
                    group.code,
                    group.key[0],
                    f"本文件第 {first} 行已有该教师{group.key_labels()}相同的记录",
                    f"row {first} of this file has a record of this teacher with the same {group.key_labels()}",
                    _key_text(key),
                )
            ],
        )
    current = list(teacher.draft.get(group.code) or [])
    index = next((i for i, r in enumerate(current) if group.record_key(r) == key), None)
    if index is None:
        merged, outcome = [*current, normalised], "created"
    else:
        merged, outcome = list(current), "updated"
        merged[index] = {**current[index], **normalised}
    files.update_group(ctx, teacher.id, group.code, merged)
    return "unchanged" if teacher.draft == before else outcome


def _key_text(key: tuple[Any, ...]) -> str:
    return "+".join("" if v is None else ",".join(v) if isinstance(v, tuple) else str(v) for v in key)


def _import_basic(ctx: ProvinceContext, school: Unit, rec: dict[str, Any]) -> str:
    if not rec.get("SFZJH") or not rec.get("SFZJLXM"):
        raise ValidationError(
            "identity columns are empty",
            [FieldError("JBXX", "SFZJH", "证件类型和证件号必填", "document type and number are required")],
        )
    try:
        number = validate_identity(rec["SFZJLXM"], str(rec["SFZJH"])).number
    except IdentityError as e:
        raise ValidationError(
            e.reason_en, [FieldError("JBXX", "SFZJH", e.reason_zh, e.reason_en, rec["SFZJH"])]
        ) from None
    teacher = files.find_by_identity(ctx, rec["SFZJLXM"], number)
    if teacher is None:
        teacher = files.register_teacher(ctx, school.id, rec)
        files.update_group(ctx, teacher.id, "JBXX", rec)
        return "created"
    if teacher.unit_id != school.id:
        raise files.duplicate_identity(ctx, teacher, school)
    before = teacher.file_version, copy.deepcopy(teacher.draft)
    files.update_group(ctx, teacher.id, "JBXX", {**teacher.draft.get("JBXX", {}), **rec})
    return "unchanged" if (teacher.file_version, teacher.draft) == before else "updated"


# ------------------------------------------------------------------------------------------- export


def _export_value(v: Any, f: FieldDef, full: Catalogue) -> Any:
    """A stored value as an export shows it: codes with their labels (``01 汉族``), lists joined."""
    if v in (None, "", []):
        return None
    if f.code_table and f.type in ("code", "codes") and f.code_table in full.code_tables:
        table = full.table(f.code_table)

        def labelled(c: Any) -> str:
            label = table.label_of(str(c))
            return f"{c} {label}" if label else str(c)

        return ",".join(labelled(c) for c in v) if isinstance(v, list) else labelled(v)
    return ",".join(map(str, v)) if isinstance(v, list) else v


def export_unit(
    ctx: ProvinceContext,
    unit_id: int,
    reason: str,
    fmt: str = "xlsx",
    groups: Iterable[str] | None = None,
) -> bytes:
    """Effective files of a unit's subtree, with each teacher's school and codes with labels; audited with
    who, when, what, why. An account that uses a security key must have used it recently (step-up)."""
    second_factor.require_fresh(ctx, "an export")
    if not (reason or "").strip():
        raise ValidationError(
            "an export needs a reason (数据导出有据可查)",
            [FieldError("export", "reason", "导出须说明用途", "an export needs a reason")],
        )
    session = ctx.session
    authorize(ctx, Operation.FILES_EXPORT)
    unit = unit_in_scope(ctx, unit_id)
    rule = authorize(ctx, Operation.FILES_EXPORT, unit)
    full = ctx.catalogue
    if groups:
        unknown = [g for g in groups if str(g).upper() not in full.groups]
        if unknown:
            raise ValidationError(
                "unknown record group",
                [
                    FieldError("export", "groups", "信息集不存在", "no such record group", scrub(str(g)))
                    for g in unknown
                ],
            )
    wanted = [full.group(str(g).upper()) for g in groups] if groups else full.ordered_groups
    if rule.view != View.FULL:  # the basic view: only its groups and fields
        wanted = [g for g in wanted if g.code in BASIC_VIEW]
    teachers = list(
        session.execute(
            select(Teacher, Unit.code, Unit.name)
            .join(Unit, Unit.id == Teacher.unit_id)
            .where(Unit.path.startswith(unit.path, autoescape=True), Teacher.ever_effective)
            .order_by(Teacher.teacher_number)
        )
    )
    sheets: dict[str, list[list[Any]]] = {}
    for g in wanted:
        cols = [f for f in g.fields if not f.retired or any(_has(t, g, f) for t, _c, _n in teachers)]
        if rule.view != View.FULL and BASIC_VIEW[g.code] is not None:
            cols = [f for f in cols if f.code in BASIC_VIEW[g.code]]
        rows = [[_head(*KEY_NUMBER), _head(*SCHOOL_CODE), _head(*SCHOOL_NAME), *[_head(f.code, f.label) for f in cols]]]
        for t, school_code, school_name in teachers:
            content = t.data.get(g.code)
            for rec in content if isinstance(content, list) else [content] if content else []:
                if g.code == "JBXX" and not rule.full_id:
                    rec = {**rec, "SFZJH": mask_id_number(rec.get("SFZJH"))}
                rows.append(
                    [
                        t.teacher_number,
                        school_code,
                        school_name,
                        *[_export_value(rec.get(f.code), f, full) for f in cols],
                    ]
                )
        sheets[g.code] = rows
    trail.record(
        ctx,
        "files.export",
        "unit",
        unit.code,
        unit.path,
        reason=reason.strip(),
        teachers=len(teachers),
        groups=[g.code for g in wanted],
        format=fmt,
    )
    if fmt == "csv":
        if len(sheets) != 1:
            raise ValidationError(
                "CSV export is one group at a time",
                [FieldError("export", "groups", "CSV 导出每次一个信息集", "CSV export takes exactly one group")],
            )
        return csv_bytes(next(iter(sheets.values())))
    return xlsx_bytes({f"{code} {full.group(code).label}"[:31]: rows for code, rows in sheets.items()})


def csv_bytes(rows: Iterable[Iterable[Any]]) -> bytes:
    """A CSV file (UTF-8 with BOM, for Excel) whose every cell is inert (:func:`common.text.csv_cell`)."""
    buf = io.StringIO()
    csv.writer(buf).writerows([csv_cell(v) for v in r] for r in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


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


def _has(t: Teacher, g: RecordGroup, f: FieldDef) -> bool:
    content = t.data.get(g.code)
    rows = content if isinstance(content, list) else [content] if content else []
    return any(r.get(f.code) not in (None, "", []) for r in rows)
