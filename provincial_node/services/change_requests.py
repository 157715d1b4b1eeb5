"""Change requests (变更申请): the only way to change information that is already effective.

Requested by an information administrator of the teacher's school with a reason and the changes
``[{group, index, field, new}]`` (``index`` for multi-record groups, ``new`` null clears); the result must
validate. Decided by an information administrator of the school's supervising bureau (主管教育行政部门).
Approval applies the changes to the effective file (and to a working copy in progress), increases the
file version, records the history and, when a core indicator changed, appends an outbox entry — all in
the caller's transaction.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.db import utcnow
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.models import ChangeRequest, Teacher, Unit
from provincial_node.services import audit, files, outbox
from provincial_node.services.access import Actor
from provincial_node.services.custom_fields import catalogue_for


def _apply(data: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for c in changes:
        group, index, field = c["group"], c.get("index"), c["field"]
        if isinstance(out.get(group), list):
            if not isinstance(index, int) or not 0 <= index < len(out[group]):
                raise ValidationError(
                    "change names a record that does not exist",
                    errors=[
                        {
                            "group": group,
                            "field": field,
                            "label": field,
                            "index": index,
                            "reason_zh": "记录不存在",
                            "reason_en": "no such record",
                            "value": index,
                        }
                    ],
                )
            row = out[group][index]
        else:
            row = out.setdefault(group, {})
        if c.get("new") in (None, "", []):
            row.pop(field, None)
        else:
            row[field] = c["new"]
    return out


def _validate(session: Session, catalogue: Catalogue, teacher: Teacher, data: dict[str, Any]) -> dict[str, Any]:
    normalised, errors = files.validate_file(session, catalogue, teacher, data)
    if errors:
        raise ValidationError("the file would be invalid after this change", errors=errors)
    return normalised


def request_change(
    session: Session, actor: Actor, catalogue: Catalogue, teacher_id: int, changes: list[dict[str, Any]], reason: str
) -> ChangeRequest:
    teacher = files.get_teacher(session, actor, teacher_id)
    files.require_held(teacher)
    actor.require("infoadmin")
    if actor.unit_id != teacher.unit_id:
        raise PermissionDeniedError("change requests are made by the teacher's school")
    if not teacher.ever_effective:
        raise ConflictError("the file has no effective information yet: edit the draft instead")
    if not (reason or "").strip():
        raise ValidationError(
            "a change request needs a reason",
            errors=[
                {
                    "group": "change_request",
                    "field": "reason",
                    "label": "reason",
                    "reason_zh": "须说明变更原因",
                    "reason_en": "a reason is required",
                    "value": None,
                }
            ],
        )
    if (
        not isinstance(changes, list)
        or not changes
        or not all(isinstance(c, dict) and "group" in c and "field" in c for c in changes)
    ):
        raise ValidationError("changes must be a non-empty list of {group, index, field, new}", errors=[])
    full = catalogue_for(session, catalogue)
    for c in changes:
        f = full.group(c["group"])
        if f.has_field(c["field"]) and f.field(c["field"]).filled_by == "workflow":
            raise PermissionDeniedError(f"{c['group']}.{c['field']} is written by a workflow")
    if {"SFZJLXM", "SFZJH"} & {c["field"] for c in changes if c["group"] == "JBXX"}:
        raise ConflictError("the identity document of a file is changed by the identity-correction procedure")
    _validate(session, catalogue, teacher, _apply(teacher.data, changes))
    cr = ChangeRequest(teacher_id=teacher.id, requested_by=actor.account_id, reason=reason.strip(), changes=changes)
    session.add(cr)
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.create",
        "change_request",
        cr.id,
        session.get(Unit, teacher.unit_id).path,
        reason=reason,
        teacher=teacher.teacher_number,
    )
    return cr


def decide(
    session: Session, actor: Actor, catalogue: Catalogue, province: str, request_id: int, decision: str, reason: str
) -> ChangeRequest:
    cr = session.get(ChangeRequest, request_id)
    if cr is None:
        raise NotFoundError(f"change request {request_id} not found")
    teacher = files.get_teacher(session, actor, cr.teacher_id)
    school = session.get(Unit, teacher.unit_id)
    actor.require("infoadmin")
    if actor.unit_id != school.supervisor_id:
        raise PermissionDeniedError("change requests are decided by the school's supervising bureau")
    if cr.status != "pending":
        raise ConflictError(f"change request already {cr.status}")
    if decision not in ("approve", "reject") or (decision == "reject" and not (reason or "").strip()):
        raise ValidationError("decision is approve, or reject with a reason", errors=[])
    cr.status = "approved" if decision == "approve" else "rejected"
    cr.decided_by, cr.decided_at, cr.decision_reason = actor.account_id, utcnow(), reason
    if decision == "approve":
        old_core = outbox.core_view(catalogue, teacher.data)[0]
        new_data = _validate(session, catalogue, teacher, _apply(teacher.data, cr.changes))
        changes = files.diff(teacher.data, new_data)
        teacher.data = new_data
        if teacher.status in ("draft", "rejected"):
            teacher.draft = _apply(teacher.draft, cr.changes)
        else:
            teacher.draft = copy.deepcopy(new_data)
        teacher.file_version += 1
        if "XM" in new_data.get("JBXX", {}):
            teacher.name = new_data["JBXX"]["XM"]
        files.record_history(
            session, teacher, actor, "change_request", status_from=teacher.status, reason=cr.reason, changes=changes
        )
        if outbox.core_view(catalogue, teacher.data)[0] != old_core:
            outbox.append(session, catalogue, teacher, province)
    audit.record(
        session,
        actor,
        f"change_request.{decision}",
        "change_request",
        cr.id,
        school.path,
        reason=reason,
        teacher=teacher.teacher_number,
    )
    return cr


def list_requests(session: Session, actor: Actor, status: str | None = "pending") -> list[ChangeRequest]:
    stmt = (
        select(ChangeRequest)
        .join(Teacher, Teacher.id == ChangeRequest.teacher_id)
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(Unit.path.startswith(actor.unit_path, autoescape=True))
    )
    if status:
        stmt = stmt.where(ChangeRequest.status == status)
    return list(session.scalars(stmt.order_by(ChangeRequest.id)))
