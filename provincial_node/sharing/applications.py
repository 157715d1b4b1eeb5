"""Data-sharing applications (信息共享, 暂行办法 art. 31): 申请 → 审核 → 使用.

Rules (after 《政务数据共享条例》 and the provincial implementing rules, ``../shared/reference/wave2_anchors.md`` §f):

* Every catalogue field has a class (:mod:`common.catalogue.sharing`): 无条件共享, 有条件共享 or 不予共享. An
  application naming a 不予共享 field is refused with a field error; naming a whole group asks for its
  shareable fields.
* A unit applies (its information administrators or query users) with a purpose (使用用途), a scenario (应用场景),
  the units whose teachers' data it wants (each with the units below it), the fields, and a period of use (at
  most a year).
* The level that owns the data reviews it: the lowest bureau holding every unit asked for and the applicant (the
  unit above the applicant when that is the applicant itself). It answers within 2 working days when every field
  is 无条件共享, otherwise within ``TMIS_SHARING_REVIEW_DAYS`` working days (Monday to Friday; public holidays are
  not modelled); an application past its due time is listed as overdue, never granted by silence. A refusal needs
  a reason; the account that applied never decides.
* An export for sharing checks the grant — approved, today within the period, the granted units and fields only —
  and is recorded (``sharing_export`` and the audit trail).
* Everything is in the audit trail: ``sharing.apply``, ``sharing.approve`` / ``sharing.refuse``, ``sharing.export``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from sqlalchemy import or_, select

from common.catalogue.sharing import ShareClass, share_class
from common.db import get_for_update
from common.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError, invalid
from provincial_node.accounts import second_factor
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import BUREAU_LEVELS, ProvinceContext
from provincial_node.rules import Operation, authorize
from provincial_node.sharing.models import SharingApplication, SharingExport
from provincial_node.sharing.status import SharingStatus
from provincial_node.teacher_files.models import Teacher

MAX_PERIOD = dt.timedelta(days=366)
UNCONDITIONAL_REVIEW_DAYS = 2


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """``start`` plus ``days`` working days (Monday to Friday)."""
    t = start
    while days > 0:
        t += dt.timedelta(days=1)
        if t.weekday() < 5:
            days -= 1
    return t


def _requested_fields(ctx: ProvinceContext, groups: list[str], fields: list[str]) -> tuple[list[str], ShareClass]:
    catalogue = ctx.catalogue
    errors: list[FieldError] = []
    wanted: set[str] = set()
    for g in groups:
        if g not in catalogue.groups:
            errors.append(FieldError("sharing", "groups", "信息集不存在", "unknown record group", g))
            continue
        shareable = [f.code for f in catalogue.group(g).fields if share_class(g, f.code) != ShareClass.WITHHELD]
        if not shareable:
            errors.append(FieldError("sharing", "groups", "该信息集不予共享", "this record group is never shared", g))
        wanted.update(f"{g}.{code}" for code in shareable)
    for item in fields:
        g, _, f = item.partition(".")
        if g not in catalogue.groups or not catalogue.group(g).has_field(f):
            errors.append(
                FieldError("sharing", "fields", "字段不存在（格式：信息集.字段）", "unknown GROUP.FIELD", item)
            )
        elif share_class(g, f) == ShareClass.WITHHELD:
            errors.append(FieldError("sharing", "fields", "该字段不予共享", "this field is never shared", item))
        else:
            wanted.add(f"{g}.{f}")
    if not wanted and not errors:
        errors.append(FieldError("sharing", "fields", "须申请至少一个字段", "name at least one group or field"))
    if errors:
        raise ValidationError("the data asked for cannot be shared as asked", errors)
    classes = {share_class(*item.split(".", 1)) for item in wanted}
    strictest = ShareClass.CONDITIONAL if ShareClass.CONDITIONAL in classes else ShareClass.UNCONDITIONAL
    return sorted(wanted), strictest


def _owning_unit(ctx: ProvinceContext, applicant: Unit, scope: list[Unit]) -> Unit:
    """The lowest bureau above (or at) every unit asked for and the applicant; the unit above the applicant
    when that is the applicant itself (nobody approves its own application)."""
    session = ctx.session
    paths = [u.path.strip("/").split("/") for u in [*scope, applicant]]
    common: list[str] = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    unit = session.get(Unit, int(common[-1]))
    while unit.level not in BUREAU_LEVELS and unit.parent_id is not None:
        unit = session.get(Unit, unit.parent_id)
    if unit.id == applicant.id and unit.parent_id is not None:
        unit = session.get(Unit, unit.parent_id)
    return unit


def apply(
    ctx: ProvinceContext,
    *,
    purpose: str,
    scenario: str,
    unit_ids: list[int],
    groups: list[str] | None = None,
    fields: list[str] | None = None,
    period_from: dt.date,
    period_to: dt.date,
) -> SharingApplication:
    """A unit applies to use teacher data (see the module rules)."""
    session, actor = ctx.session, ctx.user
    applicant = session.get(Unit, actor.unit_id)
    authorize(ctx, Operation.SHARING_APPLY, applicant)
    errors: list[FieldError] = []
    if not (purpose or "").strip():
        errors.append(FieldError("sharing", "purpose", "须说明使用用途", "the purpose is required"))
    if not (scenario or "").strip():
        errors.append(FieldError("sharing", "scenario", "须说明应用场景", "the scenario is required"))
    scope = [session.get(Unit, uid) for uid in dict.fromkeys(unit_ids or [])]
    if not scope or any(u is None for u in scope):
        errors.append(FieldError("sharing", "unit_ids", "须指定存在的单位", "name existing units", unit_ids))
    if period_to < period_from or period_to - period_from > MAX_PERIOD:
        errors.append(
            FieldError(
                "sharing",
                "period_to",
                "使用期限应在一年以内且不早于开始日期",
                "a period of at most a year",
                str(period_to),
            )
        )
    if period_to < ctx.now.date():
        errors.append(FieldError("sharing", "period_to", "使用期限已过", "the period is over", str(period_to)))
    try:
        wanted, strictest = _requested_fields(ctx, groups or [], fields or [])
    except ValidationError as e:
        errors.extend(e.field_errors)
    if errors:
        raise ValidationError("the sharing application is invalid", errors)
    reviewer = _owning_unit(ctx, applicant, scope)  # type: ignore[arg-type]
    days = UNCONDITIONAL_REVIEW_DAYS if strictest == ShareClass.UNCONDITIONAL else ctx.settings.sharing_review_days
    app = SharingApplication(
        applicant_unit_id=applicant.id,
        applied_by=actor.account_id,
        applied_at=ctx.now,
        purpose=purpose.strip(),
        scenario=scenario.strip(),
        units=[u.id for u in scope],  # type: ignore[union-attr]
        fields=wanted,
        share_class=strictest,
        period_from=period_from,
        period_to=period_to,
        reviewer_unit_id=reviewer.id,
        due_at=add_working_days(ctx.now, days),
        status=SharingStatus.PENDING,
    )
    session.add(app)
    session.flush()
    trail.record(
        ctx,
        "sharing.apply",
        "sharing_application",
        app.id,
        reviewer.path,
        reason=app.purpose,
        applicant=applicant.code,
        units=[u.code for u in scope],  # type: ignore[union-attr]
        fields=wanted,
        share_class=str(strictest),
        period=[period_from.isoformat(), period_to.isoformat()],
    )
    return app


def _visible(ctx: ProvinceContext, app_id: int, *, lock: bool = False) -> tuple[SharingApplication, Unit, Unit]:
    """The application, if its applicant or its reviewing unit lies in the actor's subtree (``lock``: read for a
    decision, ``FOR UPDATE``: two reviewers deciding at once are answered one after the other)."""
    if lock:
        app = get_for_update(ctx.session, SharingApplication, app_id)
    else:
        app = ctx.session.get(SharingApplication, app_id)
    if app is None:
        raise NotFoundError(f"sharing application {app_id} not found")
    applicant = ctx.session.get(Unit, app.applicant_unit_id)
    reviewer = ctx.session.get(Unit, app.reviewer_unit_id)
    if not (ctx.user.contains(applicant) or ctx.user.contains(reviewer)):
        raise NotFoundError(f"sharing application {app_id} not found")
    return app, applicant, reviewer


def decide(ctx: ProvinceContext, app_id: int, decision: str, reason: str | None) -> SharingApplication:
    """The owning level approves, or refuses with a reason."""
    app, _applicant, reviewer = _visible(ctx, app_id, lock=True)
    authorize(ctx, Operation.SHARING_REVIEW, reviewer, hidden=False)
    if app.applied_by == ctx.user.account_id:
        raise PermissionDeniedError("the account that applied cannot decide the application")
    if app.status != SharingStatus.PENDING:
        raise ConflictError(f"the application is already {app.status}", details={"status": app.status})
    if decision not in ("approve", "refuse"):
        raise invalid("sharing", "decision", "只能是 approve 或 refuse", "approve or refuse", decision)
    if decision == "refuse" and not (reason or "").strip():
        raise invalid("sharing", "reason", "不予同意须说明理由", "a refusal needs its reasons")
    app.status = SharingStatus.APPROVED if decision == "approve" else SharingStatus.REFUSED
    app.decided_by, app.decided_at, app.decision_reason = ctx.user.account_id, ctx.now, (reason or "").strip() or None
    trail.record(
        ctx,
        f"sharing.{decision}",
        "sharing_application",
        app.id,
        reviewer.path,
        reason=app.decision_reason,
        late=ctx.now > app.due_at,
    )
    return app


def in_scope(ctx: ProvinceContext, status: str | None = None) -> list[SharingApplication]:
    """Applications made by, or waiting for, units of the actor's subtree."""
    authorize(ctx, Operation.SHARING_READ)
    units = select(Unit.id).where(Unit.path.startswith(ctx.user.unit_path, autoescape=True))
    stmt = select(SharingApplication).where(
        or_(SharingApplication.applicant_unit_id.in_(units), SharingApplication.reviewer_unit_id.in_(units))
    )
    if status:
        stmt = stmt.where(SharingApplication.status == status)
    return list(ctx.session.scalars(stmt.order_by(SharingApplication.id)))


def is_overdue(app: SharingApplication, now: dt.datetime) -> bool:
    return app.status == SharingStatus.PENDING and now > app.due_at


def export(ctx: ProvinceContext, app_id: int, fmt: str = "xlsx") -> bytes:
    """The data an approved application grants, for its applicant unit, within its period; recorded. A fresh
    security-key check for accounts that use one (step-up)."""
    second_factor.require_fresh(ctx, "a data-sharing export")
    session = ctx.session
    app, applicant, _reviewer = _visible(ctx, app_id)
    authorize(ctx, Operation.SHARING_EXPORT, applicant, hidden=False)
    if app.status != SharingStatus.APPROVED:
        raise ConflictError(f"no grant: the application is {app.status}", details={"status": app.status})
    today = ctx.now.date()
    if not app.period_from <= today <= app.period_to:
        raise ConflictError(
            "the grant is not valid today", details={"period": [str(app.period_from), str(app.period_to)]}
        )
    if fmt not in ("xlsx", "csv"):
        raise invalid("sharing", "format", "格式只能是 xlsx 或 csv", "xlsx or csv", fmt)
    paths = [session.get(Unit, uid).path for uid in app.units]
    stmt = (
        select(Teacher)
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(or_(*[Unit.path.startswith(p, autoescape=True) for p in paths]), Teacher.ever_effective)
        .order_by(Teacher.teacher_number)
    )
    teachers = list(session.scalars(stmt))
    catalogue = ctx.catalogue
    header = ["教师编号(JSBH)"]
    for item in app.fields:
        g, f = item.split(".", 1)
        header.append(f"{catalogue.group(g).field(f).label}({item})")
    rows: list[list[Any]] = [header]
    for t in teachers:  # one row per teacher; the records of a multi-record group joined with "; "
        row: list[Any] = [t.teacher_number]
        for item in app.fields:
            g, f = item.split(".", 1)
            content = t.data.get(g)
            records = content if isinstance(content, list) else [content] if content else []
            values = [r.get(f) for r in records if r.get(f) not in (None, "", [])]
            row.append("; ".join(",".join(v) if isinstance(v, list) else str(v) for v in values) or None)
        rows.append(row)
    session.add(
        SharingExport(
            application_id=app.id,
            exported_by=ctx.user.account_id,
            at=ctx.now,
            teachers=len(teachers),
            fields=list(app.fields),
            format=fmt,
        )
    )
    trail.record(
        ctx,
        "sharing.export",
        "sharing_application",
        app.id,
        applicant.path,
        reason=app.purpose,
        teachers=len(teachers),
        fields=list(app.fields),
        format=fmt,
    )
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    wb = Workbook()
    ws = wb.active
    ws.title = f"共享数据 申请{app.id}"[:31]
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
