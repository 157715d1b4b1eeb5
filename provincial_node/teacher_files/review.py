"""The review chain (谁审核谁负责): school → county (区/县) → [city] → effective.

The levels after the school are configured per school stage or 办学类型 by the province
(:func:`provincial_node.accounts.units.review_levels`). A file waits for one level at a time; that level's
unit — the school itself, the school's supervising bureau when it is of that level, else the ancestor of
that level — decides. Rejection returns the file to the filler with a reason. The last approval makes the
file effective through :func:`~provincial_node.teacher_files.effective.write_effective`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.sql import Select

from common.errors import ConflictError, PermissionDeniedError, invalid
from provincial_node.accounts.models import Unit
from provincial_node.accounts.units import review_levels
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, Role, UnitLevel
from provincial_node.teacher_files import effective
from provincial_node.teacher_files.files import get_teacher, list_teachers
from provincial_node.teacher_files.history import record_history
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import (
    UNDER_REVIEW,
    Decision,
    FileStatus,
    HistoryAction,
    approved_by,
    last_approver,
)


def reviewing_unit(ctx: ProvinceContext, teacher: Teacher) -> tuple[UnitLevel, Unit | None, list[UnitLevel]]:
    """(level that reviews now, the unit whose administrators review, the bureau levels of the chain)."""
    session = ctx.session
    school = session.get(Unit, teacher.unit_id)
    levels = review_levels(session, ctx.base_catalogue, school)
    chain = [UnitLevel.SCHOOL, *levels]
    done = last_approver(teacher.status)
    level = UnitLevel.SCHOOL if done is None else chain[chain.index(done) + 1]
    if level == UnitLevel.SCHOOL:
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


def review(ctx: ProvinceContext, teacher_id: int, decision: str, reason: str | None = None) -> Teacher:
    """Approve or reject at the level the file is waiting for (谁审核谁负责)."""
    actor = ctx.user
    teacher = get_teacher(ctx, teacher_id)
    if teacher.status not in UNDER_REVIEW:
        raise ConflictError(
            f"the file is not waiting for review (it is {teacher.status})", details={"status": teacher.status}
        )
    level, unit, levels = reviewing_unit(ctx, teacher)
    actor.require(Role.INFOADMIN, Role.SYSADMIN)
    if unit is None or actor.unit_id != unit.id:
        raise PermissionDeniedError(
            f"the file waits for the {level}-level review",
            details={"level": level, "unit": unit.code if unit else None},
        )
    old = teacher.status
    if decision == Decision.REJECT:
        if not (reason or "").strip():
            raise invalid("review", "reason", "退回须说明原因", "a rejection needs a reason")
        teacher.status, teacher.rejection_reason = FileStatus.REJECTED, reason.strip()
        record_history(ctx, teacher, HistoryAction.REJECT, status_from=old, reason=teacher.rejection_reason)
        trail.record(ctx, "review.reject", "teacher", teacher.teacher_number, unit.path, reason=reason, level=level)
        return teacher
    if decision != Decision.APPROVE:
        raise invalid("review", "decision", "只能是 approve 或 reject", "approve or reject", decision)
    chain = [UnitLevel.SCHOOL, *levels]
    if chain.index(level) + 1 < len(chain):
        teacher.status = approved_by(level)
        record_history(ctx, teacher, HistoryAction.APPROVE, status_from=old, reason=reason)
    else:
        effective.write_effective(
            ctx, teacher, teacher.draft, action=HistoryAction.EFFECTIVE, reason=reason, status=FileStatus.EFFECTIVE
        )
    trail.record(ctx, "review.approve", "teacher", teacher.teacher_number, unit.path, reason=reason, level=level)
    return teacher


def bulk_approve(ctx: ProvinceContext, unit_id: int | None = None, reason: str | None = None) -> dict[str, int]:
    """Approve every file in the actor's subtree (or under ``unit_id``) that waits for the actor's review."""
    actor = ctx.user
    candidates = [t for t in list_teachers(ctx, unit_id=unit_id, limit=1000) if t.status in UNDER_REVIEW]
    approved = 0
    for t in candidates:
        _level, unit, _levels = reviewing_unit(ctx, t)
        if unit is not None and unit.id == actor.unit_id:
            review(ctx, t.id, Decision.APPROVE, reason or "bulk approval")
            approved += 1
    return {"approved": approved, "considered": len(candidates)}


def waits_for_actor(
    ctx: ProvinceContext, teacher: Teacher, cache: dict[tuple[int, str], Unit | None] | None = None
) -> bool:
    """The file waits for a review by the actor's unit now (``cache``: reviewing unit by school and status)."""
    if teacher.status not in UNDER_REVIEW:
        return False
    key = (teacher.unit_id, teacher.status)
    if cache is not None and key in cache:
        unit = cache[key]
    else:
        unit = reviewing_unit(ctx, teacher)[1]
        if cache is not None:
            cache[key] = unit
    return unit is not None and unit.id == ctx.user.unit_id


def _queue_candidates(ctx: ProvinceContext, unit_id: int | None) -> Select:
    actor = ctx.user
    stmt = select(Teacher).join(Unit, Unit.id == Teacher.unit_id)
    if actor.unit_level in (UnitLevel.SCHOOL, UnitLevel.DEPARTMENT):
        stmt = stmt.where(Teacher.unit_id == actor.unit_id, Teacher.status == FileStatus.SUBMITTED)
    else:
        waiting = [s for s in UNDER_REVIEW if s != FileStatus.SUBMITTED]
        stmt = stmt.where(Unit.path.startswith(actor.unit_path, autoescape=True), Teacher.status.in_(waiting))
    if unit_id is not None:
        scope = ctx.session.get(Unit, unit_id)
        stmt = stmt.where(Unit.path.startswith(scope.path if scope else "/none/", autoescape=True))
    return stmt


def review_queue(
    ctx: ProvinceContext, *, unit_id: int | None = None, after_id: int = 0, limit: int = 50
) -> list[Teacher]:
    """The files waiting for the actor's review, oldest registration first (keyset paging on the file id)."""
    if ctx.user.role not in (Role.INFOADMIN, Role.SYSADMIN):
        return []
    cache: dict = {}
    out: list[Teacher] = []
    stmt = _queue_candidates(ctx, unit_id).where(Teacher.id > after_id).order_by(Teacher.id)
    for t in ctx.session.scalars(stmt.execution_options(yield_per=500)):
        if waits_for_actor(ctx, t, cache):
            out.append(t)
            if len(out) >= limit:
                break
    return out


def review_queue_count(ctx: ProvinceContext, unit_id: int | None = None) -> int:
    if ctx.user.role not in (Role.INFOADMIN, Role.SYSADMIN):
        return 0
    cache: dict = {}
    return sum(1 for t in ctx.session.scalars(_queue_candidates(ctx, unit_id)) if waits_for_actor(ctx, t, cache))
