"""The review chain (谁审核谁负责): school → county (区/县) → [city] → effective.

Separation of duties (集体审核、谁填报谁负责、谁审核谁负责): the accounts that entered or changed the version under
review (:func:`entered_by`) cannot approve it — the school's review is done by a reviewer account distinct from
the entry account — and every approval records both, the entry accounts and the reviewer, in the file's history
(``entered_by`` beside the approving actor) and in the audit trail.

The levels after the school are configured per school stage or 办学类型 by the province
(:func:`provincial_node.accounts.units.review_levels`). A file waits for one level at a time; that level's
unit — the school itself, the school's supervising bureau when it is of that level, else the ancestor of
that level — decides. Rejection returns the file to the filler with a reason. The last approval makes the
file effective through :func:`~provincial_node.teacher_files.effective.write_effective`.
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import ColumnElement

from common.errors import ConflictError, PermissionDeniedError, invalid
from provincial_node.accounts.models import Account, Unit
from provincial_node.accounts.units import review_chains, review_levels
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext, UnitLevel
from provincial_node.rules import Operation, authorize, may
from provincial_node.teacher_files import effective
from provincial_node.teacher_files.files import list_teachers, visible_teacher
from provincial_node.teacher_files.history import record_history
from provincial_node.teacher_files.models import Teacher, TeacherHistory, without_documents
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
    return _reviewing_unit(ctx, teacher.unit_id, teacher.status)


def _reviewing_unit(
    ctx: ProvinceContext, school_id: int, status: str, chains: dict[str, str] | None = None
) -> tuple[UnitLevel, Unit | None, list[UnitLevel]]:
    """:func:`reviewing_unit` of the files of one school in one state (``chains``: :func:`review_chains`)."""
    session = ctx.session
    school = session.get(Unit, school_id)
    levels = review_levels(session, ctx.base_catalogue, school, chains)
    chain = [UnitLevel.SCHOOL, *levels]
    done = last_approver(status)
    if done is None:
        level = UnitLevel.SCHOOL
    elif done in chain and chain.index(done) + 1 < len(chain):
        level = chain[chain.index(done) + 1]
    else:  # the province shortened the chain after this approval: its last level completes the review
        level = chain[-1]
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
    teacher = visible_teacher(ctx, teacher_id, lock=True)  # two reviewers at once: the second sees the first's
    authorize(ctx, Operation.FILE_REVIEW)
    if teacher.status not in UNDER_REVIEW:
        raise ConflictError(
            f"the file is not waiting for review (it is {teacher.status})", details={"status": teacher.status}
        )
    level, unit, levels = reviewing_unit(ctx, teacher)
    if unit is None:
        raise ConflictError(f"no {level}-level unit reviews this file", details={"level": level})
    try:
        authorize(ctx, Operation.FILE_REVIEW, unit, hidden=False)
    except PermissionDeniedError:
        raise PermissionDeniedError(
            f"the file waits for the {level}-level review by {unit.name}",
            details={"level": level, "unit": unit.code, "operation": str(Operation.FILE_REVIEW)},
        ) from None
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
    entered = entered_by(ctx, teacher)
    if ctx.user.account_id in entered:
        raise PermissionDeniedError(
            "the account that entered or changed this file cannot approve it; another reviewer account of the unit "
            "reviews it (谁填报谁负责、谁审核谁负责)",
            details={"reason": "separation_of_duties", "operation": str(Operation.FILE_REVIEW)},
            message_zh="您录入或修改过这份档案，不能审核它：请由本单位另一位信息管理员审核（谁填报谁负责、谁审核谁负责）。",
        )
    chain = [UnitLevel.SCHOOL, *levels]
    if chain.index(level) + 1 < len(chain):
        teacher.status = approved_by(level)
        record_history(ctx, teacher, HistoryAction.APPROVE, status_from=old, reason=reason, entered_by=entered)
    else:
        effective.write_effective(
            ctx,
            teacher,
            teacher.draft,
            action=HistoryAction.EFFECTIVE,
            reason=reason,
            status=FileStatus.EFFECTIVE,
            entered_by=entered,
        )
    names = ctx.session.scalars(select(Account.username).where(Account.id.in_(entered))).all() if entered else []
    trail.record(
        ctx,
        "review.approve",
        "teacher",
        teacher.teacher_number,
        unit.path,
        reason=reason,
        level=level,
        reviewer=ctx.user.username,
        entered_by=sorted(names),
    )
    return teacher


def entered_by(ctx: ProvinceContext, teacher: Teacher) -> list[int]:
    """The accounts that entered or changed the version under review: every registration and edit since the
    file last became effective (谁填报谁负责). None of them may approve it."""
    session = ctx.session
    last_effective = session.scalar(
        select(func.max(TeacherHistory.id)).where(
            TeacherHistory.teacher_id == teacher.id, TeacherHistory.status_to == FileStatus.EFFECTIVE
        )
    )
    stmt = select(TeacherHistory.actor_id).where(
        TeacherHistory.teacher_id == teacher.id,
        TeacherHistory.action.in_([HistoryAction.REGISTER, HistoryAction.EDIT]),
        TeacherHistory.actor_id.is_not(None),
    )
    if last_effective is not None:
        stmt = stmt.where(TeacherHistory.id > last_effective)
    return sorted(set(session.scalars(stmt)))


def bulk_approve(ctx: ProvinceContext, unit_id: int | None = None, reason: str | None = None) -> dict[str, int]:
    """Approve every file in the actor's subtree (or under ``unit_id``) that waits for the actor's review."""
    actor = ctx.user
    authorize(ctx, Operation.FILE_REVIEW)
    candidates = [t for t in list_teachers(ctx, unit_id=unit_id, limit=1000) if t.status in UNDER_REVIEW]
    approved = skipped = 0
    for t in candidates:
        _level, unit, _levels = reviewing_unit(ctx, t)
        if unit is not None and unit.id == actor.unit_id:
            if actor.account_id in entered_by(ctx, t):
                skipped += 1  # another reviewer account approves what this account entered
                continue
            review(ctx, t.id, Decision.APPROVE, reason or "bulk approval")
            approved += 1
    return {"approved": approved, "considered": len(candidates), "skipped_own_entries": skipped}


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


def _queue_candidates(ctx: ProvinceContext, unit_id: int | None) -> list[ColumnElement[bool]]:
    """The conditions on ``teacher`` joined with its ``unit`` that every file waiting for the actor meets (a
    superset: which level reviews a state depends on the school's chain, :func:`_waiting_for_actor`)."""
    actor = ctx.user
    if actor.unit_level in (UnitLevel.SCHOOL, UnitLevel.DEPARTMENT):
        where = [Teacher.unit_id == actor.unit_id, Teacher.status == FileStatus.SUBMITTED]
    else:
        waiting = [s for s in UNDER_REVIEW if s != FileStatus.SUBMITTED]
        where = [Unit.path.startswith(actor.unit_path, autoescape=True), Teacher.status.in_(waiting)]
    if unit_id is not None:
        scope = ctx.session.get(Unit, unit_id)
        where.append(Unit.path.startswith(scope.path if scope else "/none/", autoescape=True))
    return where


def _waiting_for_actor(ctx: ProvinceContext, unit_id: int | None) -> dict[tuple[int, str], int]:
    """The files waiting for the actor's review, counted by (school, state): one grouped query over the
    candidates (no file is read), then the reviewing unit of each pair — every file of a school in one state
    waits for the same unit. Beyond the school's own review, that unit follows from the school's 办学类型,
    supervisor and place in the tree (its parent), so it is worked out once for each such kind of school."""
    session = ctx.session
    where = _queue_candidates(ctx, unit_id)
    pairs = session.execute(
        select(Teacher.unit_id, Teacher.status, Unit.school_type, Unit.supervisor_id, Unit.parent_id, func.count())
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(*where)
        .group_by(Teacher.unit_id, Teacher.status, Unit.school_type, Unit.supervisor_id, Unit.parent_id)
    ).all()
    if not pairs:
        return {}
    chains = review_chains(session)
    actor_unit = ctx.user.unit_id
    mine: dict[tuple, bool] = {}
    out = {}
    for school_id, status, school_type, supervisor_id, parent_id, n in pairs:
        key = (school_id if status == FileStatus.SUBMITTED else None, status, school_type, supervisor_id, parent_id)
        if key not in mine:
            unit = _reviewing_unit(ctx, school_id, status, chains)[1]
            mine[key] = unit is not None and unit.id == actor_unit
        if mine[key]:
            out[(school_id, status)] = n
    return out


def review_queue(
    ctx: ProvinceContext, *, unit_id: int | None = None, after_id: int = 0, limit: int = 50
) -> list[Teacher]:
    """The files waiting for the actor's review, oldest registration first (keyset paging on the file id)."""
    return review_queue_page(ctx, unit_id=unit_id, after_id=after_id, limit=limit)[0]


def review_queue_page(
    ctx: ProvinceContext, *, unit_id: int | None = None, after_id: int = 0, limit: int = 50
) -> tuple[list[Teacher], int]:
    """:func:`review_queue` and :func:`review_queue_count` together (the page shows both)."""
    if not may(ctx.user, Operation.FILE_REVIEW):
        return [], 0
    waiting = _waiting_for_actor(ctx, unit_id)
    if not waiting:
        return [], 0
    schools_by_status: dict[str, list[int]] = {}
    for school_id, status in waiting:
        schools_by_status.setdefault(status, []).append(school_id)
    stmt = (
        select(Teacher)
        .where(
            or_(*(and_(Teacher.status == s, Teacher.unit_id.in_(ids)) for s, ids in schools_by_status.items())),
            Teacher.id > after_id,
        )
        .order_by(Teacher.id)
        .limit(limit)
        .options(*without_documents())
    )
    return list(ctx.session.scalars(stmt)), sum(waiting.values())


def review_queue_count(ctx: ProvinceContext, unit_id: int | None = None) -> int:
    if not may(ctx.user, Operation.FILE_REVIEW):
        return 0
    return sum(_waiting_for_actor(ctx, unit_id).values())
