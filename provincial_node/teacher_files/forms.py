"""Edit forms generated from the catalogue (the pages' 档案填报): one :class:`FieldView` per field, with its
input kind, code options (and their parents, for cascades such as 岗位类别 → 岗位等级), required marker, and
whether this account may fill it — a field the role may not fill is shown read-only with the reason. Form data
comes back as a record (single groups) or a list of records (multi-record groups: ``r.<i>.<CODE>`` inputs, a row
kept while its ``r.<i>.__keep`` is 1), ready for :func:`~provincial_node.teacher_files.files.update_group`; the
validator's :class:`~common.errors.FieldError` s map back to the inputs they concern."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.catalogue import Catalogue, FieldDef, RecordGroup
from common.errors import FieldError
from provincial_node.context import Actor, Role

# a code table longer than this gets a search box above its <select>
FILTER_FROM = 15


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldView:
    code: str
    label: str
    kind: str  # text | date | month | year | number | select | multiselect | division | email | tel
    required: bool
    options: tuple[Option, ...] = ()
    parent: str | None = None  # cascade: the field whose code filters this one's options
    readonly_reason: str | None = None
    max_length: int | None = None
    retired: bool = False
    filter: bool = False

    @property
    def readonly(self) -> bool:
        return self.readonly_reason is not None

    def shown(self, value: Any) -> str:
        """How a read-only value reads: coded values as "code label" (several joined by 、)."""
        if value is None or value == "" or value == []:
            return ""
        labels = {o.code: o.label for o in self.options}
        values = value if isinstance(value, list) else [value]
        return "、".join(f"{v} {labels[v]}" if v in labels else str(v) for v in values)


_KINDS = {
    "text": "text",
    "idno": "text",
    "date": "date",
    "yearmonth": "month",
    "year": "year",
    "integer": "number",
    "money": "text",
    "phone": "tel",
    "mobile": "tel",
    "email": "email",
    "division": "division",
    "code": "select",
    "codes": "multiselect",
}


def readonly_reason(actor: Actor, f: FieldDef) -> str | None:
    """Why this account may not fill the field (None: it may)."""
    if f.filled_by == "workflow":
        return "由业务流程写入（如入职、调动、交流轮岗），不能直接修改"
    if actor.role == Role.TEACHER and f.filled_by != "teacher":
        return "由学校填写，教师本人不能修改"
    return None


def field_views(catalogue: Catalogue, group: RecordGroup, actor: Actor, stage: str | None) -> list[FieldView]:
    cascades = {r["field"]: r["parent_field"] for r in group.rules if r.kind == "cascade"}
    out = []
    for f in group.fields:
        if f.stages is not None and stage is not None and stage not in f.stages:
            continue
        options: tuple[Option, ...] = ()
        if f.code_table and f.type in ("code", "codes"):
            table = catalogue.table(f.code_table)
            options = tuple(Option(c.code, c.label, tuple(c.parents)) for c in table.codes.values())
        out.append(
            FieldView(
                code=f.code,
                label=f.label,
                kind=_KINDS.get(f.type, "text"),
                required=f.required,
                options=options,
                parent=cascades.get(f.code),
                readonly_reason=readonly_reason(actor, f),
                max_length=f.max_length,
                retired=f.retired,
                filter=len(options) > FILTER_FROM,
            )
        )
    return out


def _value(form: Mapping[str, Any], name: str, view: FieldView) -> Any:
    if view.kind == "multiselect":
        values = [v for v in form.getlist(name) if v]  # type: ignore[attr-defined]
        return values or None
    text = (form.get(name) or "").strip()
    return text or None


def record_from_form(form: Mapping[str, Any], views: list[FieldView], prefix: str) -> dict[str, Any]:
    """One record from the inputs ``<prefix><CODE>``. Read-only fields come back as the hidden inputs the page
    carried, so a record keeps what a workflow wrote; the service refuses any change to them."""
    out = {}
    for v in views:
        value = _value(form, f"{prefix}{v.code}", v)
        if value is not None:
            out[v.code] = value
    return out


def rows_from_form(form: Mapping[str, Any], views: list[FieldView]) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of a multi-record group in input order, and for each the index of its input row (removed
    rows are dropped; errors of the validator, which counts kept rows, map back through the second list)."""
    indices = sorted(
        {int(k.split(".")[1]) for k in form if k.startswith("r.") and k.count(".") >= 2 and k.split(".")[1].isdigit()}
    )
    rows, origin = [], []
    for i in indices:
        if form.get(f"r.{i}.__keep", "1") != "1" or form.get(f"r.{i}.__remove") == "1":
            continue  # 删除本条 ticked
        rec = record_from_form(form, views, f"r.{i}.")
        if rec:
            rows.append(rec)
            origin.append(i)
    return rows, origin


def errors_by_input(
    errors: tuple[FieldError, ...] | list[FieldError], origin: list[int] | None = None
) -> dict[str, str]:
    """``{input name: reason_zh}`` for the template (a group-level error under ``""``)."""
    out: dict[str, str] = {}
    for e in errors:
        if origin is not None and e.index is not None:
            row = origin[e.index] if e.index < len(origin) else e.index
            name = f"r.{row}.{e.field}" if e.field else f"r.{row}"
        else:
            name = f"f.{e.field}" if e.field else ""
        label = f"{e.label}：" if e.label and e.label != e.field else ""
        out.setdefault(name, f"{label}{e.reason_zh}")
    return out
