"""The unit tree (单位): province → city → county → school (→ department), and review-chain settings.

* Bureaus carry their GB/T 2260 division code; schools their 学校标识码 (checked against the 办学类型) and
  the supervising bureau (主管教育行政部门) that reviews them; municipalities and 省直辖县 have no city level.
* The review chain after the school is configured per school stage by the province: ``county`` (default)
  or ``county,city``.
* :func:`import_units_csv` loads a whole tree from CSV (UTF-8, header ``code,name,level,parent_code,
  division_code,school_type,urban_rural_type,sponsor_type,supervisor_code``); every bad row is reported
  with its line, column and reason, and nothing is written unless every row is valid. Re-importing the
  same file changes nothing.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.catalogue import STAGES, Catalogue
from common.divisions import DivisionCodeError, check_known, derive
from common.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from common.orgcodes import OrgCodeError, parse_school_id
from common.text import forbidden_reason
from provincial_node.accounts.models import ReviewChain, Unit
from provincial_node.audit_trail import trail
from provincial_node.context import BUREAU_LEVELS, ProvinceContext, UnitLevel
from provincial_node.rules import Operation, authorize

LEVELS = tuple(UnitLevel)

PARENT_LEVELS = {
    UnitLevel.CITY: (UnitLevel.PROVINCE,),
    UnitLevel.COUNTY: (UnitLevel.PROVINCE, UnitLevel.CITY),
    UnitLevel.SCHOOL: BUREAU_LEVELS,
    UnitLevel.DEPARTMENT: (UnitLevel.SCHOOL,),
}
CHAIN_OPTIONS = {"county": [UnitLevel.COUNTY], "county,city": [UnitLevel.COUNTY, UnitLevel.CITY]}
CSV_COLUMNS = [
    "code",
    "name",
    "level",
    "parent_code",
    "division_code",
    "school_type",
    "urban_rural_type",
    "sponsor_type",
    "supervisor_code",
]


def check_unit(
    session: Session, catalogue: Catalogue, values: dict[str, Any], pending: dict[str, dict[str, Any]] | None = None
) -> list[FieldError]:
    """Validate one unit definition; return the errors (empty = valid). ``pending`` holds rows of the same
    import not yet written, so parents may come earlier in the file."""
    errors: list[FieldError] = []
    level, code = values.get("level"), (values.get("code") or "").strip()
    if level not in LEVELS:
        errors.append(FieldError("unit", "level", "单位层级无效", f"level must be one of {', '.join(LEVELS)}", level))
    if not code:
        errors.append(FieldError("unit", "code", "代码必填", "code is required", code))
    name = (values.get("name") or "").strip()
    if not name:
        errors.append(FieldError("unit", "name", "名称必填", "name is required", values.get("name")))
    elif forbidden_reason(name):
        zh, en = forbidden_reason(name)  # type: ignore[misc]
        errors.append(FieldError("unit", "name", zh, en, None))

    def find(c: str | None) -> dict[str, Any] | None:
        if not c:
            return None
        if pending and c in pending:
            return pending[c]
        u = session.scalar(select(Unit).where(Unit.code == c))
        if u is None:
            return None
        parent = session.get(Unit, u.parent_id) if u.parent_id else None
        return {
            "level": u.level,
            "code": u.code,
            "division_code": u.division_code,
            "parent_code": parent.code if parent else None,
        }

    def chain(c: str | None) -> list[str]:
        """``c`` and the codes above it, nearest first (pending rows of the same file included)."""
        out: list[str] = []
        while c and c not in out and len(out) < 16:
            found = find(c)
            if found is None:
                break
            out.append(c)
            c = found.get("parent_code")
        return out

    parent = find(values.get("parent_code"))
    if level == UnitLevel.PROVINCE:
        if values.get("parent_code"):
            errors.append(
                FieldError(
                    "unit", "parent_code", "省级单位没有上级", "the province has no parent", values.get("parent_code")
                )
            )
    elif level in PARENT_LEVELS:
        if parent is None:
            errors.append(
                FieldError("unit", "parent_code", "上级单位不存在", "parent unit not found", values.get("parent_code"))
            )
        elif parent["level"] not in PARENT_LEVELS[level]:
            errors.append(
                FieldError(
                    "unit",
                    "parent_code",
                    f"{UnitLevel.label_of(level)}单位的上级不能是{UnitLevel.label_of(parent['level'])}单位",
                    f"a {level} cannot be under a {parent['level']}",
                    values.get("parent_code"),
                )
            )
    if level in BUREAU_LEVELS:
        div = values.get("division_code") or code
        try:
            check_known(div)
            path = derive(div)
            expected = {
                UnitLevel.PROVINCE: path.province,
                UnitLevel.CITY: path.city or div,
                UnitLevel.COUNTY: path.county or div,
            }[level]
            if div != expected:
                errors.append(
                    FieldError("unit", "division_code", "行政区划代码与层级不符", f"{div} is not a {level} code", div)
                )
            elif parent is not None and parent["level"] in BUREAU_LEVELS:
                above = parent.get("division_code") or parent["code"]
                inside = path.city == above if parent["level"] == UnitLevel.CITY else path.province == above
                if not inside:
                    errors.append(
                        FieldError(
                            "unit",
                            "division_code",
                            f"行政区划 {div} 不在上级单位的区划 {above} 之内",
                            f"division {div} does not lie inside the parent's division {above}",
                            div,
                        )
                    )
        except DivisionCodeError as e:
            errors.append(FieldError("unit", "division_code", e.reason_zh, e.reason_en, div))
    if level == UnitLevel.SCHOOL:
        st = values.get("school_type")
        if st not in catalogue.table("BXLX"):
            errors.append(FieldError("unit", "school_type", "办学类型代码无效", "unknown 办学类型 code", st))
        else:
            try:
                parse_school_id(code, school_classes=catalogue.school_classes, school_type=st)
            except OrgCodeError as e:
                errors.append(FieldError("unit", "code", e.reason_zh, e.reason_en, code))
        sup_code = values.get("supervisor_code") or values.get("parent_code")
        sup = find(sup_code)
        if sup is None or sup["level"] not in BUREAU_LEVELS:
            errors.append(
                FieldError(
                    "unit",
                    "supervisor_code",
                    "主管教育行政部门应为省、市或县级单位",
                    "the supervising bureau must be a province, city or county unit",
                    values.get("supervisor_code"),
                )
            )
        elif sup_code not in chain(values.get("parent_code")):
            errors.append(
                FieldError(
                    "unit",
                    "supervisor_code",
                    "主管教育行政部门应为本校的上级单位（所在区县、地市或省）之一",
                    "the supervising bureau must be one of the school's own parent bureaus (county, city or province)",
                    sup_code,
                )
            )
    return errors


def in_scope(ctx: ProvinceContext) -> list[Unit]:
    """The units of the actor's subtree, in tree order."""
    authorize(ctx, Operation.UNITS_READ)
    stmt = select(Unit).where(Unit.path.startswith(ctx.user.unit_path, autoescape=True)).order_by(Unit.path)
    return list(ctx.session.scalars(stmt))


def create_unit(ctx: ProvinceContext, values: dict[str, Any]) -> Unit:
    """Create one unit: by a system administrator, below a unit of their subtree (``ctx.actor`` None: the
    node's own provisioning)."""
    session = ctx.session
    if ctx.actor is not None:
        authorize(ctx, Operation.UNIT_CREATE)
        parent = session.scalar(select(Unit).where(Unit.code == (values.get("parent_code") or "")))
        if parent is None:
            raise PermissionDeniedError("units are created inside the caller's subtree")
        authorize(ctx, Operation.UNIT_CREATE, parent, hidden=False)
    errors = check_unit(session, ctx.base_catalogue, values)
    if errors:
        raise ValidationError(f"unit {values.get('code')!r} is invalid", errors)
    if session.scalar(select(Unit.id).where(Unit.code == values["code"])):
        raise ConflictError(f"unit {values['code']} already exists", details={"code": values["code"]})
    return _insert(session, values)


def _insert(session: Session, values: dict[str, Any]) -> Unit:
    parent = (
        session.scalar(select(Unit).where(Unit.code == values.get("parent_code")))
        if values.get("parent_code")
        else None
    )
    supervisor = None
    if values["level"] == UnitLevel.SCHOOL:
        supervisor = session.scalar(
            select(Unit).where(Unit.code == (values.get("supervisor_code") or values["parent_code"]))
        )
    unit = Unit(
        code=values["code"].strip(),
        name=values["name"].strip(),
        level=values["level"],
        parent_id=parent.id if parent else None,
        path="",
        division_code=(
            values.get("division_code") or (values["code"] if values["level"] != UnitLevel.SCHOOL else None)
        ),
        school_type=values.get("school_type") or None,
        urban_rural_type=values.get("urban_rural_type") or None,
        sponsor_type=values.get("sponsor_type") or None,
        supervisor_id=supervisor.id if supervisor else None,
    )
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


def import_units_csv(ctx: ProvinceContext, text: str) -> dict[str, int]:
    """Import a unit tree; all rows valid or nothing written. Returns counts of created/unchanged rows. Done by
    the province's system administrator (``ctx.actor`` None: the node's own provisioning) and audited."""
    if ctx.actor is not None:
        authorize(ctx, Operation.UNITS_IMPORT)
    session, catalogue = ctx.session, ctx.base_catalogue
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("code", "name", "level") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(
            "the unit CSV lacks columns", [FieldError("unit", c, "缺少列", "missing column", None) for c in missing]
        )
    rows = list(reader)
    pending: dict[str, dict[str, Any]] = {}
    errors: list[FieldError] = []
    todo: list[dict[str, Any]] = []
    unchanged = 0
    for line, row in enumerate(rows, start=2):
        values = {k: (row.get(k) or "").strip() for k in CSV_COLUMNS}
        existing = session.scalar(select(Unit).where(Unit.code == values["code"]))
        if existing is not None:
            if existing.name == values["name"] and existing.level == values["level"]:
                unchanged += 1
                continue
            errors.append(
                FieldError(
                    "unit", "code", "代码已被其他单位使用", "code already used by another unit", values["code"]
                ).at(row=line, column="code")
            )
            continue
        for e in check_unit(session, catalogue, values, pending):
            errors.append(e.at(row=line, column=e.field))
        pending[values["code"]] = values
        todo.append(values)
    if errors:
        raise ValidationError(
            f"{len({e.row for e in errors})} row(s) of the unit file are invalid; nothing imported", errors
        )
    for values in todo:
        _insert(session, values)
    result = {"created": len(todo), "unchanged": unchanged}
    if ctx.actor is not None:
        trail.record(ctx, "units.import", "unit", "*", ctx.actor.unit_path, **result)
    return result


def get_unit_by_code(session: Session, code: str) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFoundError(f"unit {code} not found", details={"code": code})
    return unit


def set_review_chain(ctx: ProvinceContext, key: str, levels: str) -> None:
    """Configure the bureau levels after the school for a school stage (``primary_secondary`` …) or for one
    办学类型 code (``342``); a code's setting wins over its stage's. Province administrators only."""
    if ctx.actor is not None:
        authorize(ctx, Operation.REVIEW_CHAIN_SET)
    session, catalogue = ctx.session, ctx.base_catalogue
    if key not in STAGES and key not in catalogue.table("BXLX"):
        raise ValidationError(
            "the review chain is set for a school stage or a 办学类型 code",
            [FieldError("unit", "stage", "应为学段或办学类型代码", f"one of {sorted(STAGES)} or a 办学类型 code", key)],
        )
    if levels not in CHAIN_OPTIONS:
        raise ValidationError(
            "review chain must be 'county' or 'county,city'",
            [FieldError("unit", "levels", "审核链只能是 county 或 county,city", "county or county,city", levels)],
        )
    row = session.get(ReviewChain, key)
    if row is None:
        session.add(ReviewChain(stage=key, levels=levels))
    else:
        row.levels = levels


def review_levels(
    session: Session, catalogue: Catalogue, school: Unit, chains: dict[str, str] | None = None
) -> list[UnitLevel]:
    """The bureau levels that review files of ``school`` after the school itself, in order. ``chains``: the
    province's settings already read (:func:`review_chains`), for callers that ask for many schools."""
    stage = catalogue.stage_of(school.school_type) if school.school_type else "primary_secondary"
    if chains is None:
        row = (session.get(ReviewChain, school.school_type) if school.school_type else None) or session.get(
            ReviewChain, stage
        )
        setting = row.levels if row else None
    else:
        setting = (chains.get(school.school_type) if school.school_type else None) or chains.get(stage)
    levels = CHAIN_OPTIONS[setting] if setting else [UnitLevel.COUNTY]
    # a school supervised directly by a city or province bureau (东莞, 省直属) skips the missing levels
    supervisor = session.get(Unit, school.supervisor_id) if school.supervisor_id else None
    if supervisor is not None and supervisor.level != UnitLevel.COUNTY:
        levels = [lv for lv in levels if lv != UnitLevel.COUNTY] or [UnitLevel(supervisor.level)]
    return levels


def review_chains(session: Session) -> dict[str, str]:
    """Every review-chain setting of the province (school stage or 办学类型 → levels), in one query."""
    return {row.stage: row.levels for row in session.scalars(select(ReviewChain))}
