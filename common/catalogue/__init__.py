"""The indicator catalogue (指标体系): record groups, fields, code tables — loaded from data files.

The catalogue is data (``data/groups.toml``, ``data/fields.csv``, ``data/code_tables.toml`` and
``data/code_tables/*.csv``), never constants scattered in code. :func:`load_catalogue` reads and checks it
once; a defect in the files (duplicate code, unknown code table, rule naming a missing field) raises
:class:`~common.errors.CatalogueError` at start-up rather than a wrong answer later.

Every field has: code, Chinese label, English label, type, code table, required flag, who fills it
(``teacher`` / ``school`` / ``workflow``), the **core** flag (核心指标: synced to the national node — the
choice and its reasons are documented at the top of ``data/groups.toml``), a maximum length and a default.
Provinces add custom indicators (地方拓展指标) with :meth:`Catalogue.with_custom_fields`; they validate
like catalogue fields and are never core.

The catalogue ``version`` is the SHA-256 of the data files, so two nodes can tell whether they validate
with the same catalogue.
"""

from __future__ import annotations

import csv
import gettext
import hashlib
import io
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from common.errors import CatalogueError, NotFoundError

FIELD_TYPES = frozenset(
    {
        "text",
        "code",
        "codes",
        "date",
        "yearmonth",
        "year",
        "integer",
        "money",
        "idno",
        "phone",
        "mobile",
        "email",
        "division",
    }
)
FILLERS = frozenset({"teacher", "school", "workflow"})
STAGES = frozenset({"kindergarten", "primary_secondary", "vocational", "special", "higher"})
RULE_KINDS = frozenset(
    {
        "only_when",
        "required_when",
        "order",
        "exclusive",
        "differs",
        "not_in",
        "cascade",
        "not_future",
        "past_year",
        "none_clears",
        "identity",
    }
)


@dataclass(frozen=True)
class Code:
    code: str
    label: str
    parents: tuple[str, ...] = ()
    stage: str | None = None


@dataclass(frozen=True)
class CodeTable:
    id: str
    label: str
    label_en: str
    source: str
    verified: bool
    codes: Mapping[str, Code]

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def label_of(self, code: str) -> str | None:
        c = self.codes.get(code)
        return c.label if c else None

    def code_for_label(self, label: str) -> str | None:
        for c in self.codes.values():
            if c.label == label:
                return c.code
        return None


@dataclass(frozen=True)
class FieldDef:
    group: str
    code: str
    label: str
    label_en: str
    type: str
    code_table: str | None
    required: bool
    filled_by: str
    core: bool
    max_length: int | None = None
    default: str | None = None
    custom: bool = False
    retired: bool = False
    stages: frozenset[str] | None = None  # custom fields may be limited to some school stages

    @property
    def qualified(self) -> str:
        return f"{self.group}.{self.code}"


@dataclass(frozen=True)
class Rule:
    kind: str
    params: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


def _key_value(v: Any) -> Any:
    if v in (None, "", []):
        return None
    return tuple(v) if isinstance(v, list) else v


@dataclass(frozen=True)
class RecordGroup:
    code: str
    order: int
    label: str
    label_en: str
    multiple: bool
    stages: frozenset[str]
    source_table: str
    core_reason: str
    fields: tuple[FieldDef, ...]
    rules: tuple[Rule, ...] = ()
    key: tuple[str, ...] = ()  # multi-record groups: the fields that identify one record (记录键)

    def field(self, code: str) -> FieldDef:
        for f in self.fields:
            if f.code == code:
                return f
        raise KeyError(f"{self.code}.{code}")

    def has_field(self, code: str) -> bool:
        return any(f.code == code for f in self.fields)

    @property
    def core_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.core)

    def applies_to(self, stage: str) -> bool:
        return stage in self.stages

    def record_key(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key of one record of a multi-record group (empty fields count as None)."""
        return tuple(_key_value(record.get(k)) for k in self.key)

    def key_labels(self) -> str:
        """The key fields as a user reads them: ``考核年度`` or ``培训年度+培训项目名称``."""
        return "+".join(self.field(k).label for k in self.key)


@dataclass(frozen=True)
class Catalogue:
    groups: Mapping[str, RecordGroup]
    code_tables: Mapping[str, CodeTable]
    version: str
    custom_version: str | None = None
    _extra: Mapping[str, Any] = field(default_factory=dict)

    def group(self, code: str) -> RecordGroup:
        """The record group ``code``; an unknown code is *not found* (404 in a URL), a caller's mistake, not a
        defect of the catalogue."""
        try:
            return self.groups[code]
        except KeyError:
            shown = code if isinstance(code, str) and code.isascii() and code.isprintable() else repr(code)
            raise NotFoundError(f"record group {shown[:40]} not found", details={"group": shown[:40]}) from None

    def table(self, table_id: str) -> CodeTable:
        try:
            return self.code_tables[table_id]
        except KeyError:
            raise CatalogueError(f"unknown code table {table_id!r}", details={"code_table": table_id}) from None

    @property
    def ordered_groups(self) -> list[RecordGroup]:
        return sorted(self.groups.values(), key=lambda g: g.order)

    @property
    def school_classes(self) -> frozenset[str]:
        """The 2-digit school classes (学校标识码 ``AA``), from the 办学类型 table."""
        return frozenset(c[:2] for c in self.table("BXLX").codes)

    def stage_of(self, school_type: str) -> str:
        """The school stage (kindergarten, primary_secondary, …) of a 办学类型 code."""
        code = self.table("BXLX").codes.get(school_type)
        if code is None or code.stage is None:
            raise CatalogueError(f"unknown 办学类型 {school_type!r}", details={"school_type": school_type})
        return code.stage

    def core_field_codes(self) -> dict[str, list[str]]:
        return {g.code: [f.code for f in g.core_fields] for g in self.ordered_groups}

    def withheld_field_codes(self) -> list[str]:
        """Every non-core field (catalogue and custom), qualified ``GROUP.FIELD``, sorted."""
        return sorted(f.qualified for g in self.groups.values() for f in g.fields if not f.core)

    def with_custom_fields(
        self, fields: Iterable[FieldDef], extra_tables: Iterable[CodeTable] = (), version: str | None = None
    ) -> Catalogue:
        """A catalogue extended with a province's custom indicators (地方拓展指标).

        Custom fields are never core, must not reuse a catalogue code, and may only name known code tables.
        """
        fields = list(fields)
        extra_tables = list(extra_tables)
        tables = dict(self.code_tables)
        for t in extra_tables:
            if t.id in tables:
                raise CatalogueError(
                    f"custom code table {t.id!r} clashes with a catalogue table", details={"code_table": t.id}
                )
            tables[t.id] = t
        if version is None:  # name the extension by its content: validators are cached by version
            version = hashlib.sha256(repr((fields, extra_tables)).encode()).hexdigest()
        groups = {k: g for k, g in self.groups.items()}
        for f in fields:
            g = groups.get(f.group)
            if g is None:
                raise CatalogueError(
                    f"custom field {f.code!r} names unknown group {f.group!r}",
                    details={"group": f.group, "field": f.code},
                )
            if g.has_field(f.code):
                raise CatalogueError(
                    f"custom field code {f.group}.{f.code} already exists", details={"group": f.group, "field": f.code}
                )
            if f.code_table and f.code_table not in tables:
                raise CatalogueError(
                    f"custom field {f.group}.{f.code} names unknown code table {f.code_table!r}",
                    details={"group": f.group, "field": f.code, "code_table": f.code_table},
                )
            if f.type not in FIELD_TYPES:
                raise CatalogueError(
                    f"custom field {f.group}.{f.code} has unknown type {f.type!r}",
                    details={"group": f.group, "field": f.code, "type": f.type},
                )
            groups[f.group] = replace(g, fields=(*g.fields, replace(f, custom=True, core=False)))
        return replace(self, groups=groups, code_tables=tables, custom_version=version)


# ---------------------------------------------------------------------------------------------- loading

_DATA = "data"


def _data_bytes(name: str) -> bytes:
    return resources.files(__package__).joinpath(_DATA, name).read_bytes()


def _read_csv(name: str, raw: bytes) -> list[dict[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CatalogueError(f"{name} is not UTF-8", details={"file": name}) from e
    return list(csv.DictReader(io.StringIO(text)))


def _iso3166_table(table_id: str, meta: dict[str, Any]) -> dict[str, Code]:
    import pycountry

    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"], fallback=True)
    overrides = meta.get("labels", {})
    codes = {}
    for c in pycountry.countries:
        codes[c.numeric] = Code(c.numeric, overrides.get(c.numeric) or zh.gettext(c.name))
    return codes


def _load_code_tables(hasher: Any) -> dict[str, CodeTable]:
    raw_index = _data_bytes("code_tables.toml")
    hasher.update(raw_index)
    index = tomllib.loads(raw_index.decode("utf-8"))
    tables: dict[str, CodeTable] = {}
    for table_id, meta in index.items():
        if meta.get("generated") == "iso3166_numeric":
            codes = _iso3166_table(table_id, meta)
        else:
            fname = f"code_tables/{table_id}.csv"
            try:
                raw = _data_bytes(fname)
            except FileNotFoundError:
                raise CatalogueError(f"code table file {fname} is missing", details={"file": fname}) from None
            hasher.update(raw)
            codes = {}
            for lineno, row in enumerate(_read_csv(fname, raw), start=2):
                code = (row.get("code") or "").strip()
                label = (row.get("label") or "").strip()
                if not code or not label:
                    raise CatalogueError(
                        f"{fname} line {lineno}: empty code or label", details={"file": fname, "line": lineno}
                    )
                if code in codes:
                    raise CatalogueError(
                        f"{fname} line {lineno}: duplicate code {code!r}",
                        details={"file": fname, "line": lineno, "code": code},
                    )
                parents = tuple(p for p in (row.get("parent") or "").split("|") if p)
                codes[code] = Code(code, label, parents, (row.get("stage") or None))
        tables[table_id] = CodeTable(
            table_id,
            meta["label"],
            meta.get("label_en", ""),
            meta.get("source", ""),
            bool(meta.get("verified", False)),
            codes,
        )
    return tables


def _load_groups(hasher: Any, tables: Mapping[str, CodeTable]) -> dict[str, RecordGroup]:
    raw_groups = _data_bytes("groups.toml")
    raw_fields = _data_bytes("fields.csv")
    hasher.update(raw_groups)
    hasher.update(raw_fields)
    groups_meta = tomllib.loads(raw_groups.decode("utf-8"))["groups"]
    fields_by_group: dict[str, list[FieldDef]] = {g: [] for g in groups_meta}
    for lineno, row in enumerate(_read_csv("fields.csv", raw_fields), start=2):
        where = {"file": "fields.csv", "line": lineno}
        g = row["group"]
        if g not in fields_by_group:
            raise CatalogueError(f"fields.csv line {lineno}: unknown group {g!r}", details=where)
        ftype = row["type"]
        if ftype not in FIELD_TYPES:
            raise CatalogueError(f"fields.csv line {lineno}: unknown type {ftype!r}", details=where)
        table = row["code_table"] or None
        if ftype in ("code", "codes") and (table is None or table not in tables):
            raise CatalogueError(
                f"fields.csv line {lineno}: {g}.{row['code']} names unknown code table {table!r}", details=where
            )
        if row["filled_by"] not in FILLERS:
            raise CatalogueError(f"fields.csv line {lineno}: filled_by must be one of {sorted(FILLERS)}", details=where)
        if any(f.code == row["code"] for f in fields_by_group[g]):
            raise CatalogueError(f"fields.csv line {lineno}: duplicate field {g}.{row['code']}", details=where)
        default = row["default"] or None
        if default is not None and table and default not in tables[table]:
            raise CatalogueError(f"fields.csv line {lineno}: default {default!r} not in {table}", details=where)
        fields_by_group[g].append(
            FieldDef(
                group=g,
                code=row["code"],
                label=row["label"],
                label_en=row["label_en"],
                type=ftype,
                code_table=table,
                required=row["required"] == "R",
                filled_by=row["filled_by"],
                core=row["core"] == "Y",
                max_length=int(row["max_length"]) if row["max_length"] else None,
                default=default,
            )
        )
    groups: dict[str, RecordGroup] = {}
    for gcode, meta in groups_meta.items():
        stages = frozenset(meta["stages"])
        if not stages <= STAGES:
            raise CatalogueError(f"group {gcode}: unknown stages {sorted(stages - STAGES)}", details={"group": gcode})
        rules = tuple(Rule(r["kind"], {k: v for k, v in r.items() if k != "kind"}) for r in meta.get("rules", []))
        group = RecordGroup(
            gcode,
            meta["order"],
            meta["label"],
            meta["label_en"],
            bool(meta["multiple"]),
            stages,
            meta["source_table"],
            meta["core_reason"],
            tuple(fields_by_group[gcode]),
            rules,
            tuple(meta.get("key", ())),
        )
        _check_key(group)
        _check_rules(group, tables)
        groups[gcode] = group
    return groups


def rule_field_names(rule: Rule) -> list[str]:
    names: list[str] = []
    for key in (
        "field",
        "parent_field",
        "type_field",
        "number_field",
        "birth_field",
        "gender_field",
        "nationality_field",
    ):
        if key in rule.params:
            names.append(rule[key])
    names.extend(rule.get("fields", []))
    names.extend(rule.get("required_otherwise", []))
    if "when" in rule.params:
        names.append(rule["when"]["field"])
    return names


def _check_key(group: RecordGroup) -> None:
    """Every multi-record group names its record key (fields of the group); single groups have none."""
    where = {"file": "groups.toml", "group": group.code}
    if group.multiple and not group.key:
        raise CatalogueError(
            f"group {group.code}: a multi-record group needs a record key (key = [...])", details=where
        )
    if not group.multiple and group.key:
        raise CatalogueError(f"group {group.code}: only multi-record groups have a record key", details=where)
    for name in group.key:
        if not group.has_field(name):
            raise CatalogueError(
                f"group {group.code}: key names unknown field {name!r}", details={**where, "field": name}
            )
    if len(set(group.key)) != len(group.key):
        raise CatalogueError(f"group {group.code}: key repeats a field", details=where)


def _check_rules(group: RecordGroup, tables: Mapping[str, CodeTable]) -> None:
    for rule in group.rules:
        where = {"group": group.code, "rule": rule.kind}
        if rule.kind not in RULE_KINDS:
            raise CatalogueError(f"group {group.code}: unknown rule kind {rule.kind!r}", details=where)
        for name in rule_field_names(rule):
            if not group.has_field(name):
                raise CatalogueError(
                    f"group {group.code}: rule {rule.kind} names unknown field {name!r}",
                    details={**where, "field": name},
                )
        if rule.kind == "cascade":
            child = group.field(rule["field"])
            parent = group.field(rule["parent_field"])
            for c in tables[child.code_table].codes.values():  # type: ignore[index]
                for p in c.parents:
                    if p not in tables[parent.code_table]:  # type: ignore[index]
                        raise CatalogueError(
                            f"code table {child.code_table}: code {c.code} has parent {p!r} "
                            f"missing from {parent.code_table}",
                            details=where,
                        )


@cache
def load_catalogue() -> Catalogue:
    """Load and check the catalogue shipped with tmis (cached: the files are immutable at run time)."""
    hasher = hashlib.sha256()
    tables = _load_code_tables(hasher)
    groups = _load_groups(hasher, tables)
    if len(groups) != 17:
        raise CatalogueError(f"the catalogue must have 17 record groups, found {len(groups)}")
    return Catalogue(groups=groups, code_tables=tables, version=hasher.hexdigest())
