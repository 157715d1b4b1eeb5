"""Batch import and export of teacher files (批量导入导出), Excel (xlsx) or CSV.

Templates: one per record group. Columns are headed ``中文名(CODE)`` — readable for users, unambiguous for
the parser — and the first column identifies the teacher: ``身份证件类型(SFZJLXM)`` + ``身份证件号(SFZJH)``
for 基本信息 (new files are registered from it) or ``教师编号(JSBH)`` for the other groups. The xlsx
template has a second sheet ``代码表`` with every code list the group uses; code cells accept the code
(``01``), the label (``汉族``) or both (``01 汉族``).

Import rules:

* every row is validated by the catalogue validator (plus custom indicators) and goes through the same
  services as the API (scope, who-fills-what, review state, no change of effective information);
* a bad row is reported — row, column, value, reason in Chinese and English — and **nothing** of it is
  written; good rows are written, each in its own savepoint;
* rows of a multi-record group are collected per teacher and replace that group of the working copy, so
  importing the same file again changes nothing (reported as ``unchanged``).

Export writes the effective files of a unit's subtree, one sheet (or CSV) per group, and is recorded in the
audit trail with who, when, what and why (数据导出有据可查).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from typing import Any

from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from common.catalogue import Catalogue, FieldDef, RecordGroup
from common.errors import FieldError, TmisError, ValidationError
from common.identity import IdentityError, validate_identity
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import BASIC_VIEW, Operation, View, authorize, mask_id_number
from provincial_node.teacher_files import files
from provincial_node.teacher_files.models import Teacher

KEY_NUMBER = ("JSBH", "教师编号")
_HEADER = re.compile(r"^\s*(.*?)\s*[（(]\s*([A-Z][A-Z0-9_]*)\s*[)）]\s*\Z")
Progress = Callable[[int, int], None]


def _columns(group: RecordGroup) -> list[FieldDef]:
    return [f for f in group.fields if f.filled_by != "workflow" and not f.retired]


def header_row(group: RecordGroup) -> list[str]:
    key = [] if group.code == "JBXX" else [f"{KEY_NUMBER[1]}({KEY_NUMBER[0]})"]
    return key + [f"{f.label}({f.code})" + ("*" if f.required else "") for f in _columns(group)]


def template(ctx: ProvinceContext, group_code: str, fmt: str) -> bytes:
    """The import template of one record group (xlsx with a 代码表 sheet, or CSV with a BOM)."""
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
    codes = wb.create_sheet("代码表")
    codes.append(["字段", "代码表", "代码", "名称"])
    for f in _columns(group):
        if f.code_table:
            for c in full.table(f.code_table).codes.values():
                codes.append([f"{f.label}({f.code})", f.code_table, c.code, c.label])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _bad(column: str, value: Any, zh: str, en: str, row: int | None = None, field: str = "") -> FieldError:
    """A problem of an import file, located by row (as the user sees it) and column heading."""
    return FieldError("import", field, zh, en, value, label=column, row=row, column=column)


def read_rows(data: bytes, fmt: str) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """(headers, [(row number as the user sees it, cells)]) of the first sheet / the CSV."""
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(
                "the CSV file must be UTF-8", [_bad("", None, "CSV 文件须为 UTF-8 编码", "the CSV file must be UTF-8")]
            ) from None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return [], []
        return rows[0], [(i, r) for i, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:
        raise ValidationError(
            "not a readable xlsx file", [_bad("", None, "不是有效的 xlsx 文件", f"not a readable xlsx file: {e}")]
        ) from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    headers = [str(h or "").strip() for h in next(it, [])]
    out = [(i, list(r)) for i, r in enumerate(it, start=2) if any(c not in (None, "") for c in r)]
    wb.close()
    return headers, out


def _cell(value: Any, f: FieldDef, full: Catalogue) -> Any:
    """Turn a spreadsheet cell into the value the validator expects (codes by code, label or both)."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):  # a date cell
        v = value.date() if hasattr(value, "date") and callable(value.date) else value
        return v.isoformat()[:7] if f.type == "yearmonth" else v.isoformat()[:10]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return None
    if f.code_table and f.type in ("code", "codes"):
        table = full.table(f.code_table)

        def one(t: str) -> str:
            t = t.strip()
            if t in table:
                return t
            head = t.split()[0] if t.split() else t
            if head in table:
                return head
            return table.code_for_label(t) or t

        if f.type == "codes":
            return [one(p) for p in re.split(r"[,，;；、]+", text) if p.strip()]
        return one(text)
    if f.type in ("integer", "year") and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def import_file(
    ctx: ProvinceContext,
    school_id: int,
    group_code: str,
    data: bytes,
    fmt: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import one group's rows for a school. See the module rules; returns counts and every row error."""
    session, full = ctx.session, ctx.catalogue
    group = full.group(group_code.upper())
    school = unit_in_scope(ctx, school_id)
    authorize(ctx, Operation.FILES_IMPORT, school)
    headers, rows = read_rows(data, fmt)
    by_code: dict[str, int] = {}
    errors: list[FieldError] = []
    for i, h in enumerate(headers):
        m = _HEADER.match(h.rstrip("*"))
        if m:
            by_code[m.group(2)] = i
        elif h:
            errors.append(
                _bad(h, None, "无法识别的列（表头应为 名称(代码)）", "unknown column (headers are Label(CODE))", 1)
            )
    known = {f.code for f in group.fields} | {KEY_NUMBER[0]}
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
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    for rowno, cells in rows:
        record = {}
        for code, i in by_code.items():
            if code in fields and i < len(cells):
                record[code] = _cell(cells[i], fields[code], full)
        key = "" if group.code == "JBXX" else str(cells[by_code[KEY_NUMBER[0]]] or "").strip()
        parsed.append((rowno, key or "", {k: v for k, v in record.items() if v not in (None, "", [])}))
    result = {
        "group": group.code,
        "rows": len(parsed),
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "errors": [],
    }
    header_of = {code: headers[i] for code, i in by_code.items()}

    def fail(rowno: int, e: TmisError) -> None:
        result["failed"] += 1
        entries = e.field_errors or (FieldError("import", "", e.message, e.message),)
        for entry in entries:
            col = header_of.get(entry.field, entry.field)
            result["errors"].append(
                _bad(col, entry.value, entry.reason_zh, entry.reason_en, rowno, entry.field).to_json()
            )

    units_by_teacher: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    done = 0
    total = len(parsed)
    if group.code == "JBXX" or not group.multiple:
        work = [(r, k, [rec]) for r, k, rec in parsed]
    else:
        for rowno, key, rec in parsed:
            units_by_teacher.setdefault(key, []).append((rowno, rec))
        work = [(rows_[0][0], key, [rec for _r, rec in rows_]) for key, rows_ in units_by_teacher.items()]
    for rowno, key, records in work:
        nested = session.begin_nested()
        try:
            outcome = _import_one(ctx, school, group, key, records)
            nested.commit()
            result[outcome] += 1
        except files.DuplicateIdentityError as e:
            nested.rollback()
            files.report_duplicate(ctx, e)  # the bureau above sees the detail; the row error says only this:
            fail(
                rowno,
                ValidationError(
                    e.message,
                    [FieldError("JBXX", "SFZJH", "该证件号已在本省建档", "already on file in the province")],
                ),
            )
        except TmisError as e:
            nested.rollback()
            fail(rowno, e)
        done += len(records)
        if progress:
            progress(done, total)
    trail.record(
        ctx,
        "files.import",
        "unit",
        school.code,
        school.path,
        **{k: v for k, v in result.items() if k != "errors"},
    )
    return result


def _import_one(ctx: ProvinceContext, school: Unit, group: RecordGroup, key: str, records: list[dict[str, Any]]) -> str:
    session = ctx.session
    if group.code == "JBXX":
        rec = records[0]
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
        before = teacher.file_version, dict(teacher.draft)
        files.update_group(ctx, teacher.id, "JBXX", {**teacher.draft.get("JBXX", {}), **rec})
        return "unchanged" if (teacher.file_version, teacher.draft) == before else "updated"
    teacher = session.scalar(select(Teacher).where(Teacher.teacher_number == key))
    if teacher is None or teacher.unit_id != school.id:
        raise ValidationError(
            "unknown teacher number for this school",
            [FieldError(group.code, KEY_NUMBER[0], "本单位没有该教师编号", "no such teacher at this school", key)],
        )
    value: Any = records if group.multiple else records[0]
    before = dict(teacher.draft)
    files.update_group(ctx, teacher.id, group.code, value)
    return "unchanged" if teacher.draft == before else "updated"


def export_unit(
    ctx: ProvinceContext,
    unit_id: int,
    reason: str,
    fmt: str = "xlsx",
    groups: Iterable[str] | None = None,
) -> bytes:
    """Effective files of a unit's subtree; audited with who, when, what, why."""
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
    wanted = [full.group(g.upper()) for g in groups] if groups else full.ordered_groups
    if rule.view != View.FULL:  # the basic view: only its groups and fields
        wanted = [g for g in wanted if g.code in BASIC_VIEW]
    teachers = list(
        session.scalars(
            select(Teacher)
            .join(Unit, Unit.id == Teacher.unit_id)
            .where(Unit.path.startswith(unit.path, autoescape=True), Teacher.ever_effective)
            .order_by(Teacher.teacher_number)
        )
    )
    sheets: dict[str, list[list[Any]]] = {}
    for g in wanted:
        cols = [f for f in g.fields if not f.retired or any(_has(t, g, f) for t in teachers)]
        if rule.view != View.FULL and BASIC_VIEW[g.code] is not None:
            cols = [f for f in cols if f.code in BASIC_VIEW[g.code]]
        rows = [["教师编号(JSBH)", *[f"{f.label}({f.code})" for f in cols]]]
        for t in teachers:
            content = t.data.get(g.code)
            for rec in content if isinstance(content, list) else [content] if content else []:
                if g.code == "JBXX" and not rule.full_id:
                    rec = {**rec, "SFZJH": mask_id_number(rec.get("SFZJH"))}
                rows.append([t.teacher_number, *[_out(rec.get(f.code)) for f in cols]])
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
        buf = io.StringIO()
        csv.writer(buf).writerows(next(iter(sheets.values())))
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    wb = Workbook()
    wb.remove(wb.active)
    for code, rows in sheets.items():
        ws = wb.create_sheet(f"{code} {full.group(code).label}"[:31])
        for r in rows:
            ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _has(t: Teacher, g: RecordGroup, f: FieldDef) -> bool:
    content = t.data.get(g.code)
    rows = content if isinstance(content, list) else [content] if content else []
    return any(r.get(f.code) not in (None, "", []) for r in rows)


def _out(v: Any) -> Any:
    return ",".join(v) if isinstance(v, list) else v
