"""Teacher files (教师电子档案): registration (新教师入职), editing the working copy, submission, reading.

The states of a file are :class:`~provincial_node.teacher_files.status.FileStatus`; the review chain is
:mod:`~provincial_node.teacher_files.review`; the one place a file becomes effective is
:mod:`~provincial_node.teacher_files.effective`.

* A file is registered by the school's information administrator with the identity fields; it gets its
  immutable teacher number then (province prefix + sequence + check character). The same identity document
  twice in the province is refused with a pointer to the existing file.
* Edits go to the working copy ``draft``; every group is validated by the catalogue validator (with the
  province's custom indicators) for the school's stage. Teachers may only touch teacher-fillable fields;
  ``workflow`` fields are written by workflows only.
* Once a file is effective, new information (empty fields filled, records appended) goes through the
  same review; changing information that is already effective is refused here and needs a change request
  (:mod:`~provincial_node.teacher_files.change_requests`).
* A file whose teacher moved to another province (跨省调出) is ``transferred_out``: kept, read-only, with
  人员状态 304 (调出) and the closing 工作经历 entry.
* Drafts and files under review never reach the outbox.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from common.catalogue import Catalogue, RecordGroup
from common.catalogue.codes import PersonStatus
from common.catalogue.schema import build_validator
from common.db import get_for_update
from common.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import Actor, ProvinceContext, Role, UnitLevel
from provincial_node.db import next_value
from provincial_node.rules import BASIC_VIEW, Operation, Rule, Scope, View, authorize, mask_id_number
from provincial_node.teacher_files.duplicates import duplicate_identity, find_by_identity
from provincial_node.teacher_files.history import diff, filled, record_history
from provincial_node.teacher_files.models import Teacher, TeacherHistory, without_documents
from provincial_node.teacher_files.status import SUBMITTABLE, UNDER_REVIEW, FileStatus, HistoryAction
from sync_protocol.identifiers import make_teacher_number

REQUIRED_GROUPS = ("JBXX",)


def get_teacher(
    ctx: ProvinceContext, teacher_id: int, op: Operation = Operation.FILE_READ, *, lock: bool = False
) -> Teacher:
    """The file, if the actor may do ``op`` on it (teachers: only their own file); not found when it lies
    outside the actor's subtree. The access decision is :func:`~provincial_node.rules.authorize`'s. ``lock``:
    for a change (:func:`visible_teacher`)."""
    teacher = visible_teacher(ctx, teacher_id, lock=lock)
    authorize(
        ctx,
        op,
        ctx.session.get(Unit, teacher.unit_id),
        teacher_id=teacher.id,
        not_found=f"teacher file {teacher_id} not found",
    )
    return teacher


def visible_teacher(ctx: ProvinceContext, teacher_id: int, *, lock: bool = False) -> Teacher:
    """The file, if it lies in the actor's subtree (a teacher: their own); otherwise not found. What the actor
    may do with it is still :func:`authorize`'s to say.

    ``lock``: the caller will change the file, or something that hangs on it, after deciding from its current
    state (edit, submit, review, a change request, a transfer). The file row is then read ``FOR UPDATE``
    (:func:`common.db.get_for_update`): every such change of one file runs one after the other, and each decides
    from what the previous one committed — two reviewers approving at once would otherwise both approve, and an
    approval could overwrite an edit saved a moment before."""
    actor = ctx.user
    teacher = get_for_update(ctx.session, Teacher, teacher_id) if lock else ctx.session.get(Teacher, teacher_id)
    if teacher is None:
        raise NotFoundError(f"teacher file {teacher_id} not found")
    if actor.role == Role.TEACHER:
        if actor.teacher_id != teacher.id:
            raise NotFoundError(f"teacher file {teacher_id} not found")
    elif not actor.contains(ctx.session.get(Unit, teacher.unit_id)):
        raise NotFoundError(f"teacher file {teacher_id} not found")
    return teacher


def read_file(ctx: ProvinceContext, teacher_id: int) -> dict[str, Any]:
    """Read a whole file, as the actor's rule shows it (:class:`~provincial_node.rules.View`): the
    effective data and the working copy, or only the basic groups and fields with no working copy; ID numbers
    in full or masked. Reading a file is an audited event (``file.read``), and an account reading more files
    in an hour than the province allows raises an alert to the unit above (:func:`trail.record_read`)."""
    teacher = visible_teacher(ctx, teacher_id)
    school = ctx.session.get(Unit, teacher.unit_id)
    rule = authorize(ctx, Operation.FILE_READ, school, teacher_id=teacher.id)
    full = rule.view == View.FULL
    out = {
        "id": teacher.id,
        "teacher_number": teacher.teacher_number,
        "name": teacher.name,
        "unit_id": teacher.unit_id,
        "status": teacher.status,
        "file_version": teacher.file_version,
        "rejection_reason": teacher.rejection_reason,
        "data": file_view(teacher.data, rule),
        "draft": file_view(teacher.draft, rule) if full else {},
    }
    trail.record_read(ctx, teacher.teacher_number, school.path, view=str(rule.view))
    return out


def file_view(data: dict[str, Any], rule: Rule) -> dict[str, Any]:
    """``data`` (a file document) as ``rule`` lets its reader see it: the basic view keeps only the groups and
    fields of :data:`~provincial_node.rules.BASIC_VIEW`; ID numbers masked unless ``rule.full_id``."""
    out: dict[str, Any] = {}
    for group, content in data.items():
        if rule.view != View.FULL:
            if group not in BASIC_VIEW:
                continue
            keep = BASIC_VIEW[group]
            if keep is not None:
                content = {k: v for k, v in (content or {}).items() if k in keep}
        out[group] = copy.deepcopy(content)
    if not rule.full_id and isinstance(out.get("JBXX"), dict) and "SFZJH" in out["JBXX"]:
        out["JBXX"]["SFZJH"] = mask_id_number(out["JBXX"]["SFZJH"])
    return out


def require_held(teacher: Teacher) -> None:
    """A file transferred to another province (调出) is read-only here."""
    if teacher.status == FileStatus.TRANSFERRED_OUT:
        raise ConflictError(
            "the teacher was transferred to another province; the file is read-only here",
            details={"status": teacher.status},
            message_zh="该教师已跨省调出，档案在本省只读。",
        )


def list_teachers(
    ctx: ProvinceContext,
    *,
    status: str | None = None,
    unit_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Teacher]:
    """Files in the actor's subtree (teachers: their own), by id."""
    actor, session = ctx.user, ctx.session
    rule = authorize(ctx, Operation.FILES_LIST)
    if rule.scope == Scope.SELF:
        return [session.get(Teacher, actor.teacher_id)] if actor.teacher_id else []
    stmt = (
        select(Teacher)
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(Unit.path.startswith(actor.unit_path, autoescape=True))
    )
    if status:
        stmt = stmt.where(Teacher.status == status)
    if unit_id:
        stmt = stmt.where(Teacher.unit_id == unit_id)
    return list(session.scalars(stmt.order_by(Teacher.id).limit(min(limit, 1000)).offset(offset)))


@dataclass(frozen=True)
class TeacherFilter:
    """What the teacher list filters on; every field optional."""

    unit_id: int | None = None  # the unit and every unit below it
    status: str | None = None
    name: str | None = None  # a part of the name
    teacher_number: str | None = None  # the number or its beginning
    id_number: str | None = None  # the whole identity document number
    school_type: str | None = None  # 办学类型 of the school
    person_status: str | None = None  # 人员状态 of the effective file


def search_teachers(
    ctx: ProvinceContext, f: TeacherFilter, *, after_id: int = 0, limit: int = 50
) -> tuple[list[Teacher], int | None, int]:
    """One page of the actor's files matching ``f``, by id after ``after_id`` (keyset paging: the cost of a page
    does not grow with how far the user paged), the id to continue after (None: last page), and the count."""
    actor, session = ctx.user, ctx.session
    if actor.role == Role.TEACHER:
        mine = [session.get(Teacher, actor.teacher_id)] if actor.teacher_id else []
        return mine, None, len(mine)
    scope = actor.unit_path
    if f.unit_id:
        unit = session.get(Unit, f.unit_id)
        if unit is None or not actor.contains(unit):
            raise NotFoundError(f"unit {f.unit_id} not found", message_zh="单位不存在或不在本账号管理范围内")
        scope = unit.path
    where = [Unit.path.startswith(scope, autoescape=True)]
    if f.status:
        where.append(Teacher.status == f.status)
    if f.name:
        where.append(Teacher.name.contains(f.name.strip(), autoescape=True))
    if f.teacher_number:
        where.append(Teacher.teacher_number.startswith(f.teacher_number.strip().upper(), autoescape=True))
    if f.id_number:
        where.append(Teacher.doc_number == f.id_number.strip().upper())
    if f.school_type:
        where.append(Unit.school_type == f.school_type)
    if f.person_status:
        where.append(Teacher.person_status == f.person_status)
    base = select(Teacher).join(Unit, Unit.id == Teacher.unit_id).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    page = base.where(Teacher.id > after_id).order_by(Teacher.id).limit(limit + 1).options(*without_documents())
    rows = list(session.scalars(page))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None), total


def count_teachers(ctx: ProvinceContext, *, status: str | None = None, own_unit: bool = False) -> int:
    """How many files of the actor's subtree (``own_unit``: of the actor's own unit) are in ``status``."""
    actor = ctx.user
    stmt = select(func.count()).select_from(Teacher)
    if own_unit:
        stmt = stmt.where(Teacher.unit_id == actor.unit_id)
    else:
        stmt = stmt.join(Unit, Unit.id == Teacher.unit_id).where(Unit.path.startswith(actor.unit_path, autoescape=True))
    if status:
        stmt = stmt.where(Teacher.status == status)
    return ctx.session.scalar(stmt)


def history(ctx: ProvinceContext, teacher_id: int) -> list[TeacherHistory]:
    """Every change of the file (a read of the whole file's past: audited like a read of the file)."""
    teacher = get_teacher(ctx, teacher_id, Operation.FILE_HISTORY)
    stmt = select(TeacherHistory).where(TeacherHistory.teacher_id == teacher.id).order_by(TeacherHistory.id)
    rows = list(ctx.session.scalars(stmt))
    trail.record_read(ctx, teacher.teacher_number, ctx.session.get(Unit, teacher.unit_id).path, view="history")
    return rows


def _group_error(group: RecordGroup, field: str, zh: str, en: str, value: Any = None) -> FieldError:
    label = group.field(field).label if field and group.has_field(field) else field
    return FieldError(group.code, field, zh, en, value, label=label, group_label=group.label)


def register_teacher(ctx: ProvinceContext, school_id: int, basic: dict[str, Any]) -> Teacher:
    """Register a new file at a school (新教师入职): identity fields required, the rest may follow."""
    session, catalogue = ctx.session, ctx.catalogue
    authorize(ctx, Operation.FILE_REGISTER)
    school = session.get(Unit, school_id)
    if school is None or school.level != UnitLevel.SCHOOL:
        raise NotFoundError(f"school {school_id} not found")
    authorize(ctx, Operation.FILE_REGISTER, school, not_found=f"school {school_id} not found")
    missing = [f for f in ("XM", "SFZJLXM", "SFZJH") if not filled(basic.get(f))]
    if missing:
        group = catalogue.group("JBXX")
        raise ValidationError(
            "identity fields are required to register a file",
            [_group_error(group, f, "必填项未填写", "is required") for f in missing],
        )
    data = build_validator(catalogue, "JBXX", school_type=school.school_type).validate(basic, partial=True).data
    existing = find_by_identity(ctx, data["SFZJLXM"], data["SFZJH"])
    if existing is not None:
        raise duplicate_identity(ctx, existing, school)
    data.setdefault("RYZTM", PersonStatus.IN_POST.value)  # 新教师入职: the workflow sets 人员状态 to 在本单位任职
    number = make_teacher_number(ctx.province, next_value(session, "teacher_number"))
    teacher = Teacher(
        teacher_number=number,
        unit_id=school.id,
        name=data["XM"],
        status=FileStatus.DRAFT,
        data={},
        draft={"JBXX": data},
    )
    teacher.set_identity(data["SFZJLXM"], data["SFZJH"])
    session.add(teacher)
    session.flush()
    record_history(ctx, teacher, HistoryAction.REGISTER, changes=diff({}, teacher.draft))
    return teacher


def _check_fill_rights(actor: Actor, catalogue: Catalogue, group_code: str, before: Any, after: Any) -> None:
    group = catalogue.group(group_code)
    changed = {
        d["field"]
        for d in diff(
            {group_code: before} if before is not None else {}, {group_code: after} if after is not None else {}
        )
    }
    denied = []
    teacher = actor.role == Role.TEACHER
    for code in sorted(changed):
        f = group.field(code) if group.has_field(code) else None
        if f is None:
            continue  # unknown fields are reported by the validator
        if f.filled_by == "workflow" or (teacher and f.filled_by != "teacher"):
            denied.append(
                _group_error(
                    group,
                    code,
                    "该项由学校或业务流程填写，本账号不能修改" if teacher else "该项由业务流程写入，不能直接修改",
                    "filled by the school or a workflow; this account may not change it"
                    if teacher
                    else "written by a workflow; cannot be edited",
                )
            )
    if denied:
        raise PermissionDeniedError("some fields may not be filled by this account", field_errors=denied)


def _carry_workflow_fields(group: Any, before: Any, after: Any) -> Any:
    """Workflow fields are not typed in: values the user leaves out keep what the workflow wrote."""
    codes = [f.code for f in group.fields if f.filled_by == "workflow"]
    if not codes or before is None:
        return after
    if isinstance(after, list):
        rows = [dict(r) for r in after]
        for i, row in enumerate(rows[: len(before)]):
            for c in codes:
                if c not in row and c in before[i]:
                    row[c] = before[i][c]
        return rows
    out = dict(after)
    for c in codes:
        if c not in out and c in before:
            out[c] = before[c]
    return dict(sorted(out.items()))


def derive_fields(draft: dict[str, Any]) -> None:
    """Fields of 基本信息 derived from other groups (现任岗位类别/等级 from the latest 岗位聘任,
    现任专业技术职务 from the latest 专业技术职务聘任)."""
    basic = draft.get("JBXX")
    if basic is None:
        return
    posts = sorted(draft.get("GWPR") or [], key=lambda r: r.get("PRKSNY") or "")
    if posts:
        basic["XRGWLBM"], basic["XRGWDJM"] = posts[-1].get("GWLBM"), posts[-1].get("GWDJM")
    titles = sorted(draft.get("ZYJSZWPR") or [], key=lambda r: r.get("PRKSNY") or "")
    if titles:
        basic["XRZYJSZWM"] = titles[-1].get("PRZYJSZWM")
    for k in [k for k, v in basic.items() if v is None]:
        del basic[k]


def _check_only_new_information(ctx: ProvinceContext, group_code: str, effective: Any, proposed: Any) -> None:
    """After a file is effective, edits may add information but not change effective values; every changed
    effective record (multi-record groups, with its ``index``) or field is named, in Chinese and English."""
    if effective is None:
        return
    group = ctx.catalogue.group(group_code)
    changed, errors = [], []
    zh = "已生效的信息不能直接修改，须由学校信息管理员提交变更申请，经主管教育行政部门批准"
    en = "effective information cannot be edited directly: it needs a change request approved by the supervising bureau"
    if isinstance(effective, list):
        rows = proposed if isinstance(proposed, list) else []
        for i, row in enumerate(effective):
            if i >= len(rows) or rows[i] != row:
                changed.append({"group": group_code, "index": i})
                other = rows[i] if i < len(rows) else {}
                fields = sorted(k for k in set(row) | set(other) if row.get(k) != other.get(k))
                for f in fields or [""]:
                    errors.append(_group_error(group, f, zh, en, row.get(f) if f else None).at(index=i))
    else:
        for field, value in effective.items():
            if filled(value) and (proposed or {}).get(field) != value:
                changed.append({"group": group_code, "field": field})
                errors.append(_group_error(group, field, zh, en, (proposed or {}).get(field)))
    if changed:
        raise ConflictError(
            "changing effective information needs a change request by the school's information "
            "administrator, approved by the supervising bureau",
            details={"changed": changed},
            message_zh="已生效的信息不能直接修改：请由学校信息管理员提交变更申请，经主管教育行政部门审批后生效。"
            "新增信息（如新的年度考核）可直接填写。",
            field_errors=errors,
        )


def validate_group(ctx: ProvinceContext, teacher: Teacher, group_code: str, value: Any, *, partial: bool) -> Any:
    """Validate one group's content (an object, or a list for multi-record groups) for the teacher's school;
    every failing field is reported, rows of a multi-record group with their ``index``."""
    catalogue = ctx.catalogue
    group = catalogue.group(group_code)
    school = ctx.session.get(Unit, teacher.unit_id)
    validator = build_validator(catalogue, group_code, school_type=school.school_type)
    if not group.multiple:
        return validator.validate(value, partial=partial).data
    if not isinstance(value, list):
        raise ValidationError(
            f"{group_code} {group.label} holds a list of records",
            [_group_error(group, "", "应为记录列表", "must be a list of records").at(label="")],
        )
    normalised, errors = [], []
    for i, row in enumerate(value):
        try:
            normalised.append(validator.validate(row, partial=partial).data)
        except ValidationError as e:
            errors.extend(err.at(index=i) for err in e.errors)
    if errors:
        raise ValidationError(f"{group_code} {group.label} failed validation", errors)
    return normalised


def update_group(ctx: ProvinceContext, teacher_id: int, group_code: str, value: Any) -> Teacher:
    """Replace one record group of the working copy (an object, or a list for multi-record groups)."""
    actor = ctx.user
    teacher = get_teacher(ctx, teacher_id, Operation.FILE_EDIT, lock=True)
    require_held(teacher)
    if teacher.status in UNDER_REVIEW:
        raise ConflictError(
            f"the file is under review ({teacher.status}); it can be edited after it is sent back",
            details={"status": teacher.status},
            message_zh="档案正在审核中，审核退回后才能修改。",
        )
    catalogue = ctx.catalogue
    group = catalogue.group(group_code)
    normalised = validate_group(ctx, teacher, group_code, value, partial=True)
    before = teacher.draft.get(group_code)
    normalised = _carry_workflow_fields(group, before, normalised)
    _check_fill_rights(actor, catalogue, group_code, before, normalised)
    if teacher.ever_effective:
        _check_only_new_information(ctx, group_code, teacher.data.get(group_code), normalised)
    if group_code == "JBXX" and (normalised.get("SFZJH"), normalised.get("SFZJLXM")) != (
        teacher.doc_number,
        teacher.doc_type,
    ):
        raise ConflictError(
            "the identity document of a registered file cannot change here",
            details={"field": "SFZJH"},
            message_zh="已登记档案的身份证件号不能在此修改：请提交变更申请。",
        )
    draft = copy.deepcopy(teacher.draft)
    draft[group_code] = normalised
    derive_fields(draft)
    changes = diff(teacher.draft, draft)
    if not changes:
        return teacher
    old_status = teacher.status
    teacher.draft = draft
    if teacher.status in (FileStatus.EFFECTIVE, FileStatus.REJECTED):
        teacher.status = FileStatus.DRAFT
    if group_code == "JBXX":
        teacher.name = normalised.get("XM", teacher.name)
    record_history(ctx, teacher, HistoryAction.EDIT, status_from=old_status, changes=changes)
    return teacher


def validate_file(
    ctx: ProvinceContext, teacher: Teacher, data: dict[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    """Fully validate every group of ``data`` for the teacher's school: (normalised data, errors). Rows of
    multi-record groups carry their ``index`` in the errors."""
    catalogue = ctx.catalogue
    school_type = ctx.session.get(Unit, teacher.unit_id).school_type
    errors: list[FieldError] = []
    normalised: dict[str, Any] = {}
    for gcode, content in data.items():
        validator = build_validator(catalogue, gcode, school_type=school_type)
        multiple = isinstance(content, list)
        out = []
        for i, row in enumerate(content if multiple else [content]):
            try:
                out.append(validator.validate(row).data)
            except ValidationError as e:
                errors.extend(err.at(index=i) if multiple else err for err in e.errors)
        normalised[gcode] = out if multiple else (out[0] if out else None)
    return normalised, errors


def completeness_errors(ctx: ProvinceContext, teacher: Teacher) -> list[FieldError]:
    """完整性检测: required groups present and every group of the working copy fully valid."""
    errors: list[FieldError] = []
    for gcode in REQUIRED_GROUPS:
        if not teacher.draft.get(gcode):
            group = ctx.catalogue.group(gcode)
            errors.append(_group_error(group, "", "必填信息集未填写", "this record group is required").at(label=""))
    return errors + validate_file(ctx, teacher, teacher.draft)[1]


def submit(ctx: ProvinceContext, teacher_id: int) -> Teacher:
    """Completeness check (完整性检测) and submission for review (未报送 → 已报送)."""
    teacher = get_teacher(ctx, teacher_id, Operation.FILE_SUBMIT, lock=True)
    if teacher.status not in SUBMITTABLE:
        raise ConflictError(
            f"only a draft or rejected file can be submitted (it is {teacher.status})",
            details={"status": teacher.status},
            message_zh=f"只有未报送或被退回的档案可以报送（当前：{FileStatus.label_of(teacher.status)}）。",
        )
    errors = completeness_errors(ctx, teacher)
    if errors:
        raise ValidationError(f"the file is incomplete or invalid: {len(errors)} problem(s)", errors)
    old = teacher.status
    teacher.status, teacher.rejection_reason = FileStatus.SUBMITTED, None
    record_history(ctx, teacher, HistoryAction.SUBMIT, status_from=old)
    return teacher
