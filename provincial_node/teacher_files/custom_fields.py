"""Custom indicators (地方拓展指标): fields a provincial administrator adds at run time.

They are stored as rows (no schema migration), validate exactly like catalogue fields (same marshmallow
builder), live inside the teacher file's JSON next to catalogue fields, are never core (never synced),
and can be retired: a retired field is no longer required or offered for new entry, but old values stay
readable and are kept when a file is saved again.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.catalogue import FIELD_TYPES, FILLERS, STAGES, Catalogue, Code, CodeTable, FieldDef
from common.errors import ConflictError, FieldError, NotFoundError, ValidationError
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.rules import Operation, authorize
from provincial_node.teacher_files.models import CustomField

_CODE = re.compile(r"^X_[A-Z0-9_]{1,37}\Z")


def define(ctx: ProvinceContext, spec: dict[str, Any]) -> CustomField:
    """Define a custom indicator (province administrators); every problem of the definition is reported."""
    actor, session, catalogue = ctx.user, ctx.session, ctx.base_catalogue
    authorize(ctx, Operation.CUSTOM_FIELDS_MANAGE)
    errors: list[FieldError] = []
    group, code = spec.get("group_code"), spec.get("code")
    if group not in catalogue.groups:
        errors.append(FieldError("custom_field", "group_code", "信息集不存在", "unknown record group", group))
    if not isinstance(code, str) or not _CODE.match(code):
        errors.append(
            FieldError(
                "custom_field",
                "code",
                "自定义字段代码须以 X_ 开头，大写字母数字下划线",
                "code must match X_[A-Z0-9_]+",
                code,
            )
        )
    if not (spec.get("label") or "").strip():
        errors.append(FieldError("custom_field", "label", "名称必填", "label is required", spec.get("label")))
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES or ftype == "idno":
        errors.append(
            FieldError(
                "custom_field", "type", "字段类型无效", f"type must be one of {sorted(FIELD_TYPES - {'idno'})}", ftype
            )
        )
    codes = spec.get("codes")
    table = spec.get("code_table")
    if ftype in ("code", "codes"):
        if bool(table) == bool(codes):
            errors.append(
                FieldError(
                    "custom_field",
                    "code_table",
                    "代码字段须指定代码表或自带代码列表（二选一）",
                    "a code field names a catalogue code table or carries its own codes (one of them)",
                    table,
                )
            )
        elif table and table not in catalogue.code_tables:
            errors.append(FieldError("custom_field", "code_table", "代码表不存在", "unknown code table", table))
        elif codes and (
            not isinstance(codes, dict)
            or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in codes.items())
        ):
            errors.append(
                FieldError(
                    "custom_field", "codes", "代码列表应为 {代码: 名称}", "codes must be an object {code: label}", codes
                )
            )
    if spec.get("filled_by", "school") not in FILLERS - {"workflow"}:
        errors.append(
            FieldError(
                "custom_field",
                "filled_by",
                "填报人只能是 teacher 或 school",
                "filled_by is teacher or school",
                spec.get("filled_by"),
            )
        )
    stages = spec.get("stages")
    if stages is not None and (not isinstance(stages, list) or not set(stages) <= STAGES):
        errors.append(
            FieldError("custom_field", "stages", "学段无效", f"stages must be a list of {sorted(STAGES)}", stages)
        )
    if errors:
        raise ValidationError("the custom indicator is invalid", errors)
    if session.scalar(select(CustomField.id).where(CustomField.group_code == group, CustomField.code == code)):
        raise ConflictError(f"custom indicator {group}.{code} already exists (retired ones keep their code)")
    row = CustomField(
        group_code=group,
        code=code,
        label=spec["label"].strip(),
        label_en=spec.get("label_en", ""),
        type=ftype,
        code_table=table or None,
        codes=codes or None,
        required=bool(spec.get("required")),
        filled_by=spec.get("filled_by", "school"),
        stages=stages,
        max_length=spec.get("max_length") or (200 if ftype == "text" else None),
    )
    session.add(row)
    session.flush()
    ctx.reload_catalogue()
    trail.record(ctx, "custom_field.define", "custom_field", f"{group}.{code}", actor.unit_path)
    return row


def retire(ctx: ProvinceContext, field_id: int, reason: str) -> CustomField:
    """Retire a custom indicator: no longer required or offered; old values stay readable."""
    actor = ctx.user
    authorize(ctx, Operation.CUSTOM_FIELDS_MANAGE)
    row = ctx.session.get(CustomField, field_id)
    if row is None:
        raise NotFoundError(f"custom indicator {field_id} not found")
    if row.retired_at is None:
        row.retired_at = ctx.now
        ctx.reload_catalogue()
        trail.record(
            ctx,
            "custom_field.retire",
            "custom_field",
            f"{row.group_code}.{row.code}",
            actor.unit_path,
            reason=reason,
        )
    return row


def all_fields(session: Session) -> list[CustomField]:
    """Every custom indicator, retired ones included, in the order they were defined."""
    return list(session.scalars(select(CustomField).order_by(CustomField.id)))


def catalogue_for(session: Session, catalogue: Catalogue) -> Catalogue:
    """The catalogue extended with every custom indicator (retired ones marked retired). The app hands this
    to :class:`~provincial_node.context.ProvinceContext`, which calls it once per request."""
    rows = all_fields(session)
    if not rows:
        return catalogue
    fields, tables = [], []
    for r in rows:
        table_id = r.code_table
        if r.codes:
            table_id = f"{r.group_code}.{r.code}"
            tables.append(
                CodeTable(
                    table_id,
                    r.label,
                    r.label_en,
                    "custom indicator",
                    False,
                    {k: Code(k, v) for k, v in r.codes.items()},
                )
            )
        fields.append(
            FieldDef(
                group=r.group_code,
                code=r.code,
                label=r.label,
                label_en=r.label_en,
                type=r.type,
                code_table=table_id,
                required=r.required and r.retired_at is None,
                filled_by=r.filled_by,
                core=False,
                max_length=r.max_length,
                custom=True,
                retired=r.retired_at is not None,
                stages=frozenset(r.stages) if r.stages else None,
            )
        )
    # the version names the definitions themselves (validators are cached by it)
    version = hashlib.sha256(
        json.dumps(
            [
                [
                    f.group,
                    f.code,
                    f.label,
                    f.type,
                    f.code_table,
                    f.required,
                    f.filled_by,
                    f.max_length,
                    f.retired,
                    sorted(f.stages or []),
                ]
                for f in fields
            ]
            + [[t.id, sorted((c.code, c.label) for c in t.codes.values())] for t in tables],
            ensure_ascii=False,
        ).encode()
    ).hexdigest()
    return catalogue.with_custom_fields(fields, tables, version=version)
