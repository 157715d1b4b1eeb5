"""Export of teacher files (批量导出).

Export writes the effective files of a unit's subtree, one sheet (or CSV) per group, with the school of
each teacher (学校标识码, 学校名称) and every code with its label (``01 汉族``), and is recorded in the
audit trail with who, when, what and why (数据导出有据可查). Every text cell is made inert for spreadsheets
(:mod:`common.text`: formula-like values, stored control characters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from common.catalogue import Catalogue, FieldDef, RecordGroup
from common.errors import (
    FieldError,
    ValidationError,
)
from common.text import csv_bytes, scrub
from provincial_node.accounts import second_factor
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import BASIC_VIEW, Operation, View, authorize, mask_id_number
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.sheets import (
    KEY_NUMBER,
    SCHOOL_CODE,
    SCHOOL_NAME,
    heading,
    xlsx_bytes,
)


def _export_value(v: Any, f: FieldDef, full: Catalogue) -> Any:
    """A stored value as an export shows it: codes with their labels (``01 汉族``), lists joined."""
    if v in (None, "", []):
        return None
    if f.code_table and f.type in ("code", "codes") and f.code_table in full.code_tables:
        table = full.table(f.code_table)

        def labelled(c: Any) -> str:
            label = table.label_of(str(c))
            return f"{c} {label}" if label else str(c)

        return ",".join(labelled(c) for c in v) if isinstance(v, list) else labelled(v)
    return ",".join(map(str, v)) if isinstance(v, list) else v


def export_unit(
    ctx: ProvinceContext,
    unit_id: int,
    reason: str,
    fmt: str = "xlsx",
    groups: Iterable[str] | None = None,
) -> bytes:
    """Effective files of a unit's subtree, with each teacher's school and codes with labels; audited with
    who, when, what, why. An account that uses a security key must have used it recently (step-up)."""
    second_factor.require_fresh(ctx, "an export")
    if not (reason or "").strip():
        raise ValidationError(
            "an export needs a reason (数据导出有据可查)",
            [FieldError("export", "reason", "导出须说明用途", "an export needs a reason")],
        )
    session = ctx.session
    authorize(ctx, Operation.FILES_EXPORT)
    unit = unit_in_scope(ctx, unit_id)
    rule = authorize(ctx, Operation.FILES_EXPORT, unit)
    full = ctx.catalogue
    if groups:
        unknown = [g for g in groups if str(g).upper() not in full.groups]
        if unknown:
            raise ValidationError(
                "unknown record group",
                [
                    FieldError("export", "groups", "信息集不存在", "no such record group", scrub(str(g)))
                    for g in unknown
                ],
            )
    wanted = [full.group(str(g).upper()) for g in groups] if groups else full.ordered_groups
    if rule.view != View.FULL:  # the basic view: only its groups and fields
        wanted = [g for g in wanted if g.code in BASIC_VIEW]
    teachers = list(
        session.execute(
            select(Teacher, Unit.code, Unit.name)
            .join(Unit, Unit.id == Teacher.unit_id)
            .where(Unit.path.startswith(unit.path, autoescape=True), Teacher.ever_effective)
            .order_by(Teacher.teacher_number)
        )
    )
    sheets: dict[str, list[list[Any]]] = {}
    for g in wanted:
        cols = [f for f in g.fields if not f.retired or any(_has(t, g, f) for t, _c, _n in teachers)]
        if rule.view != View.FULL and BASIC_VIEW[g.code] is not None:
            cols = [f for f in cols if f.code in BASIC_VIEW[g.code]]
        rows = [
            [
                heading(*KEY_NUMBER),
                heading(*SCHOOL_CODE),
                heading(*SCHOOL_NAME),
                *[heading(f.code, f.label) for f in cols],
            ]
        ]
        for t, school_code, school_name in teachers:
            content = t.data.get(g.code)
            for rec in content if isinstance(content, list) else [content] if content else []:
                if g.code == "JBXX" and not rule.full_id:
                    rec = {**rec, "SFZJH": mask_id_number(rec.get("SFZJH"))}
                rows.append(
                    [
                        t.teacher_number,
                        school_code,
                        school_name,
                        *[_export_value(rec.get(f.code), f, full) for f in cols],
                    ]
                )
        sheets[g.code] = rows
    trail.record(
        ctx,
        "files.export",
        "unit",
        unit.code,
        unit.path,
        reason=reason.strip(),
        teachers=len(teachers),
        groups=[g.code for g in wanted],
        format=fmt,
    )
    if fmt == "csv":
        if len(sheets) != 1:
            raise ValidationError(
                "CSV export is one group at a time",
                [FieldError("export", "groups", "CSV 导出每次一个信息集", "CSV export takes exactly one group")],
            )
        return csv_bytes(next(iter(sheets.values())))
    return xlsx_bytes({f"{code} {full.group(code).label}"[:31]: rows for code, rows in sheets.items()})


def _has(t: Teacher, g: RecordGroup, f: FieldDef) -> bool:
    content = t.data.get(g.code)
    rows = content if isinstance(content, list) else [content] if content else []
    return any(r.get(f.code) not in (None, "", []) for r in rows)
