"""One person, one file in the province (一人一号): finding a file by identity document (through the blind index),
and the answer to a second file for the same person — the existing file named only to an actor who may see it,
"already on file in the province" to anyone else, the detail written to the audit trail of the bureau above."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from common.errors import ConflictError
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.teacher_files.models import Teacher


def find_by_identity(ctx: ProvinceContext, doc_type: str, number: str) -> Teacher | None:
    """The file of an identity document anywhere in the province (found through the blind index)."""
    return ctx.session.scalar(select(Teacher).where(Teacher.doc_type == doc_type, Teacher.doc_index == number))


class DuplicateIdentityError(ConflictError):
    """A second file for the same person (一人一号). The message names the existing file only when the actor
    may see it; the detail for the bureau above is :func:`report_duplicate`'s (the caller writes it after the
    failed write is rolled back)."""

    def __init__(self, message: str, *, existing: Teacher, school: Unit, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.teacher_number, self.school_code, self.existing_unit_id = (
            existing.teacher_number,
            school.code,
            existing.unit_id,
        )
        self.school_id = school.id


def duplicate_identity(ctx: ProvinceContext, existing: Teacher, school: Unit) -> DuplicateIdentityError:
    """The answer to a second file for the same person at ``school``. A file the actor may see is named; of
    any other the actor learns only that the person is already on file in the province."""
    at = ctx.session.get(Unit, existing.unit_id)
    actor = ctx.actor
    if actor is not None and actor.contains(at):
        return DuplicateIdentityError(
            f"this identity document already has a file in your scope (teacher {existing.teacher_number})",
            existing=existing,
            school=school,
            details={"teacher_number": existing.teacher_number, "unit_code": at.code, "unit_name": at.name},
        )
    return DuplicateIdentityError(
        "already on file in the province (该身份证件号已在本省建档)",
        existing=existing,
        school=school,
        details={"reason": "duplicate_identity"},
    )


def report_duplicate(ctx: ProvinceContext, e: DuplicateIdentityError) -> None:
    """The detail of a refused duplicate for the bureau above the school (its audit trail, not the school's):
    which school tried, and where and under which teacher number the person is on file."""
    session = ctx.session
    school = session.get(Unit, e.school_id)
    at = session.get(Unit, e.existing_unit_id)
    bureau_id = school.supervisor_id or school.parent_id
    bureau = session.get(Unit, bureau_id) if bureau_id else school
    trail.record(
        ctx,
        "files.duplicate_identity",
        "teacher",
        e.teacher_number,
        bureau.path,
        attempted_at=school.code,
        existing_at=at.code,
        existing_name=at.name,
    )
