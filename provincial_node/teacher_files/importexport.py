"""Batch import and export of teacher files (批量导入导出), Excel (xlsx) or CSV.

The spreadsheets themselves (templates, reading a file, writing one) are :mod:`provincial_node.teacher_files.sheets`.

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

Export: :mod:`provincial_node.teacher_files.exporting`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from common.catalogue import RecordGroup
from common.catalogue.schema import build_validator
from common.errors import (
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    TmisError,
    ValidationError,
)
from common.identity import IdentityError, validate_identity
from common.text import strip_neutraliser
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, authorize
from provincial_node.tasks import service as tasks
from provincial_node.tasks.models import Task
from provincial_node.tasks.runner import TaskCancelled, TaskWork
from provincial_node.teacher_files import duplicates, files
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.sheets import (
    HEADER_RE,
    KEY_NUMBER,
    SAVE_AS_UTF8_EN,
    SAVE_AS_UTF8_ZH,
    SCHOOL_CODE,
    SCHOOL_NAME,
    CellProblem,
    Progress,
    bad_cell,
    cell_value,
    columns,
    read_rows,
    too_large,
)


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
    if not columns(group):
        raise ValidationError(
            f"{group.code} {group.label} is written by workflows and cannot be imported",
            [bad_cell("", group.code, "本信息集由业务流程写入，不能导入", "this group is written by workflows")],
        )
    settings = ctx.settings
    headers, rows, encoding = read_rows(
        data, fmt, max_rows=settings.import_max_rows, max_bytes=settings.import_max_bytes
    )
    by_code: dict[str, int] = {}
    errors: list[FieldError] = []
    for i, h in enumerate(headers):
        m = HEADER_RE.match(h.rstrip("*"))
        if m:
            by_code[m.group(2)] = i
        elif h:
            hint_zh = (
                ""
                if encoding in ("utf-8", "xlsx")
                else f"（文件按 {encoding} 编码读取；若表头是乱码，{SAVE_AS_UTF8_ZH}）"
            )
            hint_en = (
                "" if encoding in ("utf-8", "xlsx") else f" (read as {encoding}; if it is garbled, {SAVE_AS_UTF8_EN})"
            )
            errors.append(
                bad_cell(
                    h,
                    None,
                    "无法识别的列（表头应为 名称(代码)）" + hint_zh,
                    "unknown column (headers are Label(CODE))" + hint_en,
                    1,
                )
            )
    known = {f.code for f in group.fields} | {KEY_NUMBER[0], SCHOOL_CODE[0], SCHOOL_NAME[0]}
    errors += [
        bad_cell(headers[i], None, "该列不属于本信息集", "this column is not a field of the group", 1)
        for c, i in by_code.items()
        if c not in known
    ]
    key_cols = ["SFZJLXM", "SFZJH"] if group.code == "JBXX" else [KEY_NUMBER[0]]
    missing = [c for c in key_cols if c not in by_code]
    if missing:
        errors.append(
            bad_cell(",".join(missing), None, "缺少标识教师的列", "the columns identifying the teacher are missing", 1)
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
                    value = cell_value(cell(code), fields[code], full)
                except CellProblem as p:
                    problems.append(bad_cell(header_of[code], cell(code), p.zh, p.en, rowno, code))
                    continue
                if value not in (None, "", []):
                    record[code] = value
        number = "" if group.code == "JBXX" else strip_neutraliser(str(cell(KEY_NUMBER[0]) or "").strip())
        school_code = strip_neutraliser(str(cell(SCHOOL_CODE[0]) or "").strip())
        if school_code and school_code != school.code:
            problems.append(
                bad_cell(
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
                    bad_cell(
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
        except duplicates.DuplicateIdentityError as e:
            nested.rollback()
            duplicates.report_duplicate(ctx, e)  # the bureau above sees the detail; the row error says only this:
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
        result["errors"].append(
            bad_cell(col, entry.value, entry.reason_zh, entry.reason_en, rowno, entry.field).to_json()
        )


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
            "format must be xlsx or csv",
            [bad_cell("format", fmt, "格式只能是 xlsx 或 csv", "format must be xlsx or csv")],
        )
    if len(data) > ctx.settings.import_max_bytes:
        raise too_large("bytes", len(data), ctx.settings.import_max_bytes)
    if not data:
        raise ValidationError("the file is empty", [bad_cell("", None, "文件为空", "the file is empty")])
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
    teacher = duplicates.find_by_identity(ctx, rec["SFZJLXM"], number)
    if teacher is None:
        teacher = files.register_teacher(ctx, school.id, rec)
        files.update_group(ctx, teacher.id, "JBXX", rec)
        return "created"
    if teacher.unit_id != school.id:
        raise duplicates.duplicate_identity(ctx, teacher, school)
    before = teacher.file_version, copy.deepcopy(teacher.draft)
    files.update_group(ctx, teacher.id, "JBXX", {**teacher.draft.get("JBXX", {}), **rec})
    return "unchanged" if (teacher.file_version, teacher.draft) == before else "updated"
