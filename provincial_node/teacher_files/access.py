"""The pages' and services' way to a file through the access rules: load it, then ask :func:`rules.authorize`
for the operation on the file's school (teachers: only their own file). One call per page, so a page refuses
exactly what the API refuses."""

from __future__ import annotations

from common.errors import NotFoundError
from provincial_node.accounts.models import Unit
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, authorize
from provincial_node.teacher_files.models import Teacher


def file_for(ctx: ProvinceContext, op: Operation, teacher_id: int) -> Teacher:
    """The file ``teacher_id`` if the actor may do ``op`` on it: 403 when the role or level may not, 404 when the
    file does not exist or lies outside the actor's subtree (or is not the teacher's own)."""
    teacher = ctx.session.get(Teacher, teacher_id)
    if teacher is None:
        raise NotFoundError(f"teacher file {teacher_id} not found")
    authorize(
        ctx,
        op,
        ctx.session.get(Unit, teacher.unit_id),
        teacher_id=teacher.id,
        not_found=f"teacher file {teacher_id} not found",
    )
    return teacher
