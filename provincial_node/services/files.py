"""Teacher files (教师电子档案) and the review chain (谁填报谁负责、谁审核谁负责).

States of a file::

    draft ──submit──▶ submitted ──school──▶ school_approved ──county──▶ county_approved ──[city]──▶ effective
      ▲                    │                      │                          │
      └──── rejected ◀─────┴──────── reject (with a reason, back to the filler) ┘

* A file is registered by the school's information administrator (新教师入职) with the identity fields;
  it gets its immutable teacher number then (province prefix + sequence + check character). The same
  identity document twice in the province is refused with a pointer to the existing file.
* Edits go to the working copy ``draft``; every group is validated by the catalogue validator (with the
  province's custom indicators) for the school's stage. Teachers may only touch teacher-fillable fields;
  ``workflow`` fields are written by workflows only.
* Once a file is effective, new information (empty fields filled, records appended) goes through the
  same review; changing information that is already effective is refused here and needs a change request
  (:mod:`provincial_node.services.change_requests`).
* A file whose teacher moved to another province (跨省调出) is ``transferred_out``: kept, read-only, with
  人员状态 304 (调出) and the closing 工作经历 entry.
* On the last approval the draft becomes the effective ``data``, the file version increases, the change
  is recorded in the history, and — when a core indicator changed — an outbox entry is appended in the
  same transaction. Drafts and files under review never reach the outbox.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.catalogue.schema import build_validator
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.models import Teacher, TeacherHistory, Unit
from provincial_node.services import audit, outbox
from provincial_node.services.access import Actor
from provincial_node.services.custom_fields import catalogue_for
from provincial_node.services.units import review_levels
from sync_protocol.identifiers import make_teacher_number

EDITABLE = ("draft", "rejected", "effective")
UNDER_REVIEW = ("submitted", "school_approved", "county_approved", "city_approved")
REQUIRED_GROUPS = ("JBXX",)


def _filled(v: Any) -> bool:
    return v not in (None, "", [])


def get_teacher(session: Session, actor: Actor, teacher_id: int) -> Teacher:
    """The file, if the actor may see it (teachers: only their own). Otherwise not found."""
    teacher = session.get(Teacher, teacher_id)
    if teacher is None:
        raise NotFoundError(f"teacher file {teacher_id} not found")
    if actor.role == "teacher":
        if actor.teacher_id != teacher.id:
            raise NotFoundError(f"teacher file {teacher_id} not found")
    elif not actor.contains(session.get(Unit, teacher.unit_id)):
        raise NotFoundError(f"teacher file {teacher_id} not found")
    return teacher


def require_held(teacher: Teacher) -> None:
    """A file transferred to another province (调出) is read-only here."""
    if teacher.status == "transferred_out":
        raise ConflictError(
            "the teacher was transferred to another province; the file is read-only here",
            details={"status": teacher.status},
        )


def list_teachers(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    unit_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Teacher]:
    if actor.role == "teacher":
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


def record_history(
    session: Session,
    teacher: Teacher,
    actor: Actor | None,
    action: str,
    *,
    status_from: str | None = None,
    reason: str | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> None:
    session.add(
        TeacherHistory(
            teacher_id=teacher.id,
            actor_id=actor.account_id if actor else None,
            action=action,
            status_from=status_from,
            status_to=teacher.status,
            reason=reason,
            changes=changes or [],
        )
    )


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-level differences ``[{group, index, field, old, new}]`` (index None for single groups)."""
    out = []
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group), new.get(group)
        a_rows = a if isinstance(a, list) else [a or {}]
        b_rows = b if isinstance(b, list) else [b or {}]
        multiple = isinstance(a, list) or isinstance(b, list)
        for i in range(max(len(a_rows), len(b_rows))):
            ra = a_rows[i] if i < len(a_rows) else {}
            rb = b_rows[i] if i < len(b_rows) else {}
            for field in sorted(set(ra) | set(rb)):
                if ra.get(field) != rb.get(field):
                    out.append(
                        {
                            "group": group,
                            "index": i if multiple else None,
                            "field": field,
                            "old": ra.get(field),
                            "new": rb.get(field),
                        }
                    )
    return out


def register_teacher(
    session: Session, actor: Actor, catalogue: Catalogue, province: str, school_id: int, basic: dict[str, Any]
) -> Teacher:
    """Register a new file at a school (新教师入职): identity fields required, the rest may follow."""
    actor.require("infoadmin", "sysadmin")
    school = session.get(Unit, school_id)
    if school is None or school.level != "school" or not actor.contains(school):
        raise NotFoundError(f"school {school_id} not found")
    if actor.unit_level not in ("school", "department") and actor.unit_id != school.id:
        raise PermissionDeniedError("files are registered by the school (谁填报谁负责)")
    missing = [f for f in ("XM", "SFZJLXM", "SFZJH") if not _filled(basic.get(f))]
    if missing:
        raise ValidationError(
            "identity fields are required to register a file",
            errors=[
                {
                    "group": "JBXX",
                    "group_label": "基本信息",
                    "field": f,
                    "label": catalogue.group("JBXX").field(f).label,
                    "reason_zh": "必填项未填写",
                    "reason_en": "is required",
                    "value": None,
                }
                for f in missing
            ],
        )
    full = catalogue_for(session, catalogue)
    data = build_validator(full, "JBXX", school_type=school.school_type).validate(basic, partial=True).data
    existing = session.scalar(
        select(Teacher).where(Teacher.doc_type == data["SFZJLXM"], Teacher.doc_number == data["SFZJH"])
    )
    if existing is not None:
        at = session.get(Unit, existing.unit_id)
        raise ConflictError(
            "this identity document already has a file in the province",
            details={"teacher_number": existing.teacher_number, "unit_code": at.code, "unit_name": at.name},
        )
    data.setdefault("RYZTM", "100")  # 新教师入职: the workflow sets 人员状态 to 在本单位任职
    number = make_teacher_number(province, outbox.next_value(session, "teacher_number"))
    teacher = Teacher(
        teacher_number=number,
        unit_id=school.id,
        doc_type=data["SFZJLXM"],
        doc_number=data["SFZJH"],
        name=data["XM"],
        status="draft",
        data={},
        draft={"JBXX": data},
    )
    session.add(teacher)
    session.flush()
    record_history(session, teacher, actor, "register", changes=diff({}, teacher.draft))
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
    for code in sorted(changed):
        f = group.field(code) if group.has_field(code) else None
        if f is None:
            continue  # unknown fields are reported by the validator
        if f.filled_by == "workflow" or (actor.role == "teacher" and f.filled_by != "teacher"):
            denied.append(
                {
                    "group": group_code,
                    "group_label": group.label,
                    "field": code,
                    "label": f.label,
                    "reason_zh": "该项由学校或业务流程填写，本账号不能修改"
                    if actor.role == "teacher"
                    else "该项由业务流程写入，不能直接修改",
                    "reason_en": "filled by the school or a workflow; this account may not change it"
                    if actor.role == "teacher"
                    else "written by a workflow; cannot be edited",
                    "value": None,
                }
            )
    if denied:
        raise PermissionDeniedError("some fields may not be filled by this account", details={"errors": denied})


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


def _check_only_new_information(group_code: str, effective: Any, proposed: Any) -> None:
    """After a file is effective, edits may add information but not change effective values."""
    if effective is None:
        return
    changed = []
    if isinstance(effective, list):
        rows = proposed if isinstance(proposed, list) else []
        for i, row in enumerate(effective):
            if i >= len(rows) or rows[i] != row:
                changed.append({"group": group_code, "index": i})
    else:
        for field, value in effective.items():
            if _filled(value) and (proposed or {}).get(field) != value:
                changed.append({"group": group_code, "field": field})
    if changed:
        raise ConflictError(
            "changing effective information needs a change request by the school's information "
            "administrator, approved by the supervising bureau",
            details={"changed": changed},
        )


def update_group(
    session: Session, actor: Actor, catalogue: Catalogue, teacher_id: int, group_code: str, value: Any
) -> Teacher:
    """Replace one record group of the working copy (an object, or a list for multi-record groups)."""
    teacher = get_teacher(session, actor, teacher_id)
    if actor.role not in ("teacher", "infoadmin", "sysadmin"):
        raise PermissionDeniedError(f"role {actor.role} may not edit files")
    if actor.role != "teacher" and actor.unit_id != teacher.unit_id:
        raise PermissionDeniedError("files are edited by their school (谁填报谁负责)")
    require_held(teacher)
    if teacher.status in UNDER_REVIEW:
        raise ConflictError(
            f"the file is under review ({teacher.status}); it can be edited after it is sent back",
            details={"status": teacher.status},
        )
    full = catalogue_for(session, catalogue)
    group = full.group(group_code)
    school = session.get(Unit, teacher.unit_id)
    validator = build_validator(full, group_code, school_type=school.school_type)
    if group.multiple:
        if not isinstance(value, list):
            raise ValidationError(
                f"{group_code} {group.label} holds a list of records",
                errors=[
                    {
                        "group": group_code,
                        "group_label": group.label,
                        "field": "",
                        "label": "",
                        "reason_zh": "应为记录列表",
                        "reason_en": "must be a list of records",
                        "value": None,
                    }
                ],
            )
        normalised = []
        errors = []
        for i, row in enumerate(value):
            try:
                normalised.append(validator.validate(row, partial=True).data)
            except ValidationError as e:
                errors.extend({**err, "index": i} for err in e.errors)
        if errors:
            raise ValidationError(f"{group_code} {group.label} failed validation", errors=errors)
    else:
        normalised = validator.validate(value, partial=True).data
    before = teacher.draft.get(group_code)
    normalised = _carry_workflow_fields(group, before, normalised)
    _check_fill_rights(actor, full, group_code, before, normalised)
    if teacher.ever_effective:
        _check_only_new_information(group_code, teacher.data.get(group_code), normalised)
    if group_code == "JBXX" and (normalised.get("SFZJH"), normalised.get("SFZJLXM")) != (
        teacher.doc_number,
        teacher.doc_type,
    ):
        raise ConflictError("the identity document of a registered file cannot change here", details={"field": "SFZJH"})
    draft = copy.deepcopy(teacher.draft)
    draft[group_code] = normalised
    derive_fields(draft)
    changes = diff(teacher.draft, draft)
    if not changes:
        return teacher
    old_status = teacher.status
    teacher.draft = draft
    teacher.status = "draft" if teacher.status in ("effective", "rejected") else teacher.status
    if group_code == "JBXX":
        teacher.name = normalised.get("XM", teacher.name)
    record_history(session, teacher, actor, "edit", status_from=old_status, changes=changes)
    return teacher


def _full_errors(session: Session, catalogue: Catalogue, teacher: Teacher) -> list[dict[str, Any]]:
    full = catalogue_for(session, catalogue)
    errors: list[dict[str, Any]] = []
    for gcode in REQUIRED_GROUPS:
        if not teacher.draft.get(gcode):
            g = full.group(gcode)
            errors.append(
                {
                    "group": gcode,
                    "group_label": g.label,
                    "field": "",
                    "label": "",
                    "reason_zh": "必填信息集未填写",
                    "reason_en": "this record group is required",
                    "value": None,
                }
            )
    return errors + validate_file(session, catalogue, teacher, teacher.draft)[1]


def validate_file(
    session: Session, catalogue: Catalogue, teacher: Teacher, data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fully validate every group of ``data`` for the teacher's school: (normalised data, errors). Rows of
    multi-record groups carry their ``index`` in the errors."""
    full = catalogue_for(session, catalogue)
    school_type = session.get(Unit, teacher.unit_id).school_type
    errors: list[dict[str, Any]] = []
    normalised: dict[str, Any] = {}
    for gcode, content in data.items():
        validator = build_validator(full, gcode, school_type=school_type)
        multiple = isinstance(content, list)
        out = []
        for i, row in enumerate(content if multiple else [content]):
            try:
                out.append(validator.validate(row).data)
            except ValidationError as e:
                errors.extend({**err, "index": i} if multiple else err for err in e.errors)
        normalised[gcode] = out if multiple else (out[0] if out else None)
    return normalised, errors


def submit(session: Session, actor: Actor, catalogue: Catalogue, teacher_id: int) -> Teacher:
    """Completeness check (完整性检测) and submission for review (未报送 → 已报送)."""
    teacher = get_teacher(session, actor, teacher_id)
    if actor.role not in ("teacher", "infoadmin", "sysadmin") or (
        actor.role != "teacher" and actor.unit_id != teacher.unit_id
    ):
        raise PermissionDeniedError("files are submitted by the teacher or their school")
    if teacher.status not in ("draft", "rejected"):
        raise ConflictError(
            f"only a draft or rejected file can be submitted (it is {teacher.status})",
            details={"status": teacher.status},
        )
    errors = _full_errors(session, catalogue, teacher)
    if errors:
        raise ValidationError(f"the file is incomplete or invalid: {len(errors)} problem(s)", errors=errors)
    old = teacher.status
    teacher.status, teacher.rejection_reason = "submitted", None
    record_history(session, teacher, actor, "submit", status_from=old)
    return teacher


def _reviewing_unit(session: Session, catalogue: Catalogue, teacher: Teacher) -> tuple[str, Unit | None, list[str]]:
    """(level that reviews now, the unit whose administrators review, the bureau levels of the chain)."""
    school = session.get(Unit, teacher.unit_id)
    levels = review_levels(session, catalogue, school)
    chain = ["school", *levels]
    # "<level>_approved" names the last level that approved; the next one in the chain reviews now
    level = (
        "school" if teacher.status == "submitted" else chain[chain.index(teacher.status.removesuffix("_approved")) + 1]
    )
    if level == "school":
        return level, school, levels
    if school.supervisor_id and session.get(Unit, school.supervisor_id).level == level:
        return level, session.get(Unit, school.supervisor_id), levels
    # walk up to the ancestor of that level (a municipality has no city level: skipped by review_levels)
    ids = [int(x) for x in school.path.strip("/").split("/")]
    for uid in reversed(ids):
        u = session.get(Unit, uid)
        if u.level == level:
            return level, u, levels
    return level, None, levels


def review(
    session: Session,
    actor: Actor,
    catalogue: Catalogue,
    province: str,
    teacher_id: int,
    decision: str,
    reason: str | None = None,
) -> Teacher:
    """Approve or reject at the level the file is waiting for (谁审核谁负责)."""
    teacher = get_teacher(session, actor, teacher_id)
    if teacher.status not in UNDER_REVIEW:
        raise ConflictError(
            f"the file is not waiting for review (it is {teacher.status})", details={"status": teacher.status}
        )
    level, unit, levels = _reviewing_unit(session, catalogue, teacher)
    actor.require("infoadmin", "sysadmin")
    if unit is None or actor.unit_id != unit.id:
        raise PermissionDeniedError(
            f"the file waits for the {level}-level review",
            details={"level": level, "unit": unit.code if unit else None},
        )
    old = teacher.status
    if decision == "reject":
        if not (reason or "").strip():
            raise ValidationError(
                "a rejection needs a reason",
                errors=[
                    {
                        "group": "review",
                        "field": "reason",
                        "label": "reason",
                        "reason_zh": "退回须说明原因",
                        "reason_en": "a rejection needs a reason",
                        "value": None,
                    }
                ],
            )
        teacher.status, teacher.rejection_reason = "rejected", reason.strip()
        record_history(session, teacher, actor, "reject", status_from=old, reason=teacher.rejection_reason)
        audit.record(
            session, actor, "review.reject", "teacher", teacher.teacher_number, unit.path, reason=reason, level=level
        )
        return teacher
    if decision != "approve":
        raise ValidationError(
            "decision must be approve or reject",
            errors=[
                {
                    "group": "review",
                    "field": "decision",
                    "label": "decision",
                    "reason_zh": "只能是 approve 或 reject",
                    "reason_en": "approve or reject",
                    "value": decision,
                }
            ],
        )
    chain = ["school", *levels]
    nxt = chain.index(level) + 1
    if nxt < len(chain):
        teacher.status = f"{level}_approved"
        record_history(session, teacher, actor, "approve", status_from=old, reason=reason)
    else:
        make_effective(session, actor, catalogue, province, teacher, reason)
    audit.record(
        session, actor, "review.approve", "teacher", teacher.teacher_number, unit.path, reason=reason, level=level
    )
    return teacher


def make_effective(
    session: Session,
    actor: Actor | None,
    catalogue: Catalogue,
    province: str,
    teacher: Teacher,
    reason: str | None = None,
) -> None:
    old_status = teacher.status
    old_core = outbox.core_view(catalogue, teacher.data)[0]
    changes = diff(teacher.data, teacher.draft)
    teacher.data = copy.deepcopy(teacher.draft)
    teacher.status, teacher.ever_effective = "effective", True
    teacher.file_version += 1
    record_history(session, teacher, actor, "effective", status_from=old_status, reason=reason, changes=changes)
    if outbox.core_view(catalogue, teacher.data)[0] != old_core:
        outbox.append(session, catalogue, teacher, province)


def bulk_approve(
    session: Session,
    actor: Actor,
    catalogue: Catalogue,
    province: str,
    unit_id: int | None = None,
    reason: str | None = None,
) -> dict[str, int]:
    """Approve every file in the actor's subtree (or under ``unit_id``) that waits for the actor's review."""
    candidates = [t for t in list_teachers(session, actor, unit_id=unit_id, limit=1000) if t.status in UNDER_REVIEW]
    approved = 0
    for t in candidates:
        _level, unit, _levels = _reviewing_unit(session, catalogue, t)
        if unit is not None and unit.id == actor.unit_id:
            review(session, actor, catalogue, province, t.id, "approve", reason or "bulk approval")
            approved += 1
    return {"approved": approved, "considered": len(candidates)}


def history(session: Session, actor: Actor, teacher_id: int) -> list[TeacherHistory]:
    teacher = get_teacher(session, actor, teacher_id)
    return list(
        session.scalars(
            select(TeacherHistory).where(TeacherHistory.teacher_id == teacher.id).order_by(TeacherHistory.id)
        )
    )
