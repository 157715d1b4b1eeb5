"""Marshmallow validators built from the catalogue (and a province's custom indicators).

:func:`build_validator` turns one record group into a marshmallow schema — one field per catalogue field,
typed by the field's ``type``, plus one schema-level validator per cross-field rule of the group — and
wraps it in a :class:`GroupValidator` whose :meth:`~GroupValidator.validate` returns normalised data or
raises :class:`common.errors.ValidationError` listing **every** failing field as
``{group, group_label, field, label, reason_zh, reason_en, value}``.

Normalised values are JSON-native and float-free (they are hashed and signed later): codes, text, dates
(``YYYY-MM-DD``), year-months (``YYYY-MM``) and money (decimal string, 2 places) are strings; years and
integers are ints; multi-code fields are lists of strings.

``partial=True`` validates a draft: required rules are not enforced, every value present is checked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import RAISE, Schema, fields, validates_schema
from marshmallow import ValidationError as MarshmallowError

from common.catalogue import Catalogue, CodeTable, FieldDef, RecordGroup, Rule, rule_field_names
from common.divisions import DivisionCodeError, derive
from common.errors import FieldError, ValidationError
from common.identity import IdentityError, validate_identity
from common.text import forbidden_reason, scrub

# ------------------------------------------------------------------------------------ bilingual reasons

REASONS: dict[str, tuple[str, str]] = {
    "required": ("必填项未填写", "is required"),
    "null": ("不能为空", "must not be empty"),
    "unknown_field": ("不是本信息集的字段", "is not a field of this record group"),
    "invalid_text": ("应为文本", "must be text"),
    "forbidden_character": ("{reason_zh}", "{reason_en}"),
    "too_long": ("长度超过 {max} 个字符", "is longer than {max} characters"),
    "not_in_table": ("代码 {value} 不在代码表 {table}（{table_label}）中", "code {value} is not in code table {table}"),
    "not_a_list": ("应为代码列表", "must be a list of codes"),
    "duplicate_code": ("代码 {value} 重复", "code {value} is repeated"),
    "invalid_date": ("应为有效日期 YYYY-MM-DD", "must be a real date YYYY-MM-DD"),
    "invalid_yearmonth": ("应为有效年月 YYYY-MM", "must be a real year-month YYYY-MM"),
    "invalid_year": ("应为四位年份", "must be a four-digit year"),
    "year_range": ("年份应在 1900 至 {max} 之间", "the year must be between 1900 and {max}"),
    "invalid_integer": ("应为整数", "must be an integer"),
    "negative": ("不能为负数", "must not be negative"),
    "invalid_money": ("应为金额（最多两位小数）", "must be an amount with at most 2 decimals"),
    "invalid_phone": ("应为数字（可含连字符）", "must be digits (hyphens allowed)"),
    "invalid_mobile": ("应为11位手机号码", "must be an 11-digit mobile number"),
    "invalid_email": ("应为有效电子邮箱（含@）", "must be an e-mail address containing @"),
    "invalid_division": ("{reason_zh}", "{reason_en}"),
    "invalid_identity": ("{reason_zh}", "{reason_en}"),
    "birth_mismatch": (
        "出生日期与证件号中的出生日期 {expected} 不一致",
        "differs from the birth date {expected} in the document number",
    ),
    "gender_mismatch": ("性别与证件号中的性别码不一致", "differs from the gender encoded in the document number"),
    "only_when": ("仅当{other}为{values}时填写", "may be filled only when {other_en} is {values}"),
    "required_when": ("当{other}为{values}时必填", "is required when {other_en} is {values}"),
    "order": ("应{op_zh}{other}", "must be {op_en} {other_en}"),
    "exclusive": ("代码 {value} 不能与其他选项同时选择", "code {value} cannot be combined with other codes"),
    "differs": ("不能与{other}相同", "must differ from {other_en}"),
    "not_in": ("不能为 {value}", "must not be {value}"),
    "cascade": ("代码 {value} 不属于{other} {parent}", "code {value} is not valid under {other_en} {parent}"),
    "future_year": ("年份不能晚于当前年份", "the year must not be after the current year"),
    "past_year": ("未满一年请下年度填报（应早于 {year} 年）", "only completed years may be filed (before {year})"),
    "must_be_empty": ("当{other}为「无」时不应填写", "must be empty when {other_en} is none"),
    "stage": ("本学校类型不采集此字段", "is not collected for this school type"),
}


def _reason(key: str, **params: Any) -> str:
    # no braces without params: marshmallow str.format()s the messages it raises itself
    return f"tmis:{key}" + ("|" + json.dumps(params, ensure_ascii=False, default=str) if params else "")


def _translate(message: str, value: Any) -> tuple[str, str]:
    if message.startswith("tmis:"):
        key, _, raw = message[5:].partition("|")
        params = json.loads(raw) if raw else {}
    elif message == "Unknown field.":
        key, params = "unknown_field", {}
    else:  # a marshmallow message we did not anticipate: keep it, never hide an error
        return message, message
    zh, en = REASONS[key]
    params = {"value": value, **params}
    return zh.format(**params), en.format(**params)


# ------------------------------------------------------------------------------------------- field types

_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_YM = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")
_YM_COMPACT = re.compile(r"^([0-9]{4})([0-9]{2})\Z")
_PHONE = re.compile(r"^[0-9][0-9\-]{2,29}\Z")
_MOBILE = re.compile(r"^1[0-9]{10}\Z")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_MESSAGES = {"required": _reason("required"), "null": _reason("null")}


def _this_year() -> int:
    return dt.date.today().year  # noqa: DTZ011 - calendar year


class _Text(fields.Field):
    def __init__(
        self,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        pattern_reason: str = "invalid_text",
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.max_length = max_length
        self.pattern = pattern
        self.pattern_reason = pattern_reason

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MarshmallowError(_reason("invalid_text"))
        text = str(value).strip()
        bad = forbidden_reason(text)
        if bad is not None:  # control characters, lone surrogates, bidi overrides: refused in every text field
            raise MarshmallowError(_reason("forbidden_character", reason_zh=bad[0], reason_en=bad[1]))
        if self.max_length is not None and len(text) > self.max_length:
            raise MarshmallowError(_reason("too_long", max=self.max_length))
        if self.pattern is not None and text and not self.pattern.match(text):
            raise MarshmallowError(_reason(self.pattern_reason))
        return text


class _Code(fields.Field):
    def __init__(self, table: CodeTable, **kw: Any) -> None:
        super().__init__(**kw)
        self.table = table

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MarshmallowError(_reason("invalid_text"))
        code = str(value).strip()
        if code not in self.table:
            raise MarshmallowError(_reason("not_in_table", table=self.table.id, table_label=self.table.label))
        return code


class _Codes(fields.Field):
    def __init__(self, table: CodeTable, **kw: Any) -> None:
        super().__init__(**kw)
        self.table = table

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> list[str]:
        if isinstance(value, str):  # "01,13" from an import file
            value = [v for v in re.split(r"[,，;；\s]+", value) if v]
        if not isinstance(value, list | tuple):
            raise MarshmallowError(_reason("not_a_list"))
        out: list[str] = []
        for v in value:
            code = str(v).strip()
            if code not in self.table:
                raise MarshmallowError(
                    _reason("not_in_table", value=code, table=self.table.id, table_label=self.table.label)
                )
            if code in out:
                raise MarshmallowError(_reason("duplicate_code", value=code))
            out.append(code)
        return sorted(out)


class _Date(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        m = _DATE.match(str(value).strip()) if isinstance(value, str) else None
        if not m:
            raise MarshmallowError(_reason("invalid_date"))
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise MarshmallowError(_reason("invalid_date")) from None
        if d.year < 1900:
            raise MarshmallowError(_reason("invalid_date"))
        return d.isoformat()


class _YearMonth(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, dt.date):
            return f"{value.year:04d}-{value.month:02d}"
        text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        m = _YM.match(text) or _YM_COMPACT.match(text)
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
            raise MarshmallowError(_reason("invalid_yearmonth"))
        return f"{m.group(1)}-{m.group(2)}"


class _Year(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        if isinstance(value, bool):
            raise MarshmallowError(_reason("invalid_year"))
        text = str(value).strip()
        if not re.fullmatch(r"[0-9]{4}", text):
            raise MarshmallowError(_reason("invalid_year"))
        year = int(text)
        if not 1900 <= year <= _this_year() + 1:
            raise MarshmallowError(_reason("year_range", max=_this_year() + 1))
        return year


class _Integer(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        if isinstance(value, (bool, float)):
            raise MarshmallowError(_reason("invalid_integer"))
        text = str(value).strip()
        if not re.fullmatch(r"-?[0-9]{1,15}", text):
            raise MarshmallowError(_reason("invalid_integer"))
        n = int(text)
        if n < 0:
            raise MarshmallowError(_reason("negative"))
        return n


class _Money(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, (bool, float)):
            # floats are refused: amounts are exact decimals (and are hashed later)
            raise MarshmallowError(_reason("invalid_money"))
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise MarshmallowError(_reason("invalid_money")) from None
        if not amount.is_finite() or amount.as_tuple().exponent < -2 or abs(amount) >= Decimal(10) ** 12:
            raise MarshmallowError(_reason("invalid_money"))
        if amount < 0:
            raise MarshmallowError(_reason("negative"))
        return f"{amount:.2f}"


class _Division(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        code = str(value).strip()
        try:
            derive(code)
        except DivisionCodeError as e:
            raise MarshmallowError(_reason("invalid_division", reason_zh=e.reason_zh, reason_en=e.reason_en)) from None
        return code


def _marshmallow_field(f: FieldDef, catalogue: Catalogue, partial_required: bool) -> fields.Field:
    kw: dict[str, Any] = {
        "required": f.required and not f.retired and partial_required,
        "allow_none": not f.required,
        "error_messages": _MESSAGES,
    }
    t = f.type
    if t == "code":
        return _Code(catalogue.table(f.code_table or ""), **kw)
    if t == "codes":
        return _Codes(catalogue.table(f.code_table or ""), **kw)
    if t == "date":
        return _Date(**kw)
    if t == "yearmonth":
        return _YearMonth(**kw)
    if t == "year":
        return _Year(**kw)
    if t == "integer":
        return _Integer(**kw)
    if t == "money":
        return _Money(**kw)
    if t == "division":
        return _Division(**kw)
    if t == "phone":
        return _Text(f.max_length or 30, _PHONE, "invalid_phone", **kw)
    if t == "mobile":
        return _Text(11, _MOBILE, "invalid_mobile", **kw)
    if t == "email":
        return _Text(f.max_length or 100, _EMAIL, "invalid_email", **kw)
    return _Text(f.max_length, **kw)  # text, idno (checked by the identity rule)


# ------------------------------------------------------------------------------------------ rule engine


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def _period(v: Any) -> tuple[int, ...]:
    """Comparable (year[, month[, day]]) of a date, year-month or year value."""
    if isinstance(v, int):
        return (v,)
    return tuple(int(p) for p in str(v).split("-"))


class _RuleChecker:
    def __init__(self, group: RecordGroup, catalogue: Catalogue) -> None:
        self.group = group
        self.catalogue = catalogue

    def label(self, code: str) -> str:
        return self.group.field(code).label

    def label_en(self, code: str) -> str:
        return self.group.field(code).label_en

    def values_text(self, field_code: str, values: list[str]) -> str:
        f = self.group.field(field_code)
        table = self.catalogue.code_tables.get(f.code_table or "")
        return "/".join(f"{v} {table.label_of(v)}" if table and table.label_of(v) else v for v in values)

    def check(
        self,
        rule: Rule,
        data: dict[str, Any],
        partial: bool,
        errors: dict[str, list[str]],
        failed: set[str],
        state: dict[str, Any],
    ) -> None:
        def add(fname: str, key: str, **params: Any) -> None:
            errors.setdefault(fname, []).append(_reason(key, **params))

        def usable(*names: str) -> bool:
            return not any(n in failed for n in names)

        k = rule.kind
        if k in ("only_when", "required_when"):
            w = rule["when"]
            if not usable(w["field"], *rule["fields"]):
                return
            holds = data.get(w["field"]) in w["in"]
            other = {
                "other": self.label(w["field"]),
                "other_en": self.label_en(w["field"]),
                "values": self.values_text(w["field"], w["in"]),
            }
            for fname in rule["fields"]:
                if k == "only_when" and not holds and not _empty(data.get(fname)) and data.get(w["field"]) is not None:
                    add(fname, "only_when", **other)
                needs = holds if k == "required_when" else holds and rule.get("required", False)
                if needs and not partial and _empty(data.get(fname)):
                    add(fname, "required_when", **other)
        elif k == "order":
            names = [n for n in rule["fields"] if not _empty(data.get(n)) and usable(n)]
            strict = rule.get("op", "<=") == "<"
            for a, b in itertools.pairwise(names):
                pa, pb = _period(data[a]), _period(data[b])
                n = min(len(pa), len(pb))
                if pa[:n] > pb[:n] or (strict and pa[:n] == pb[:n]):
                    add(
                        b,
                        "order",
                        op_zh="晚于" if strict else "不早于",
                        op_en="after" if strict else "not before",
                        other=self.label(a),
                        other_en=self.label_en(a),
                    )
        elif k == "exclusive":
            values = data.get(rule["field"]) or []
            if usable(rule["field"]) and len(values) > 1:
                for code in rule["codes"]:
                    if code in values:
                        add(rule["field"], "exclusive", value=code)
        elif k == "differs":
            a, b = rule["fields"]
            if usable(a, b) and not _empty(data.get(a)) and data.get(a) == data.get(b):
                add(b, "differs", other=self.label(a), other_en=self.label_en(a))
        elif k == "not_in":
            v = data.get(rule["field"])
            if usable(rule["field"]) and v in rule["codes"]:
                add(rule["field"], "not_in", value=v)
        elif k == "cascade":
            child, parent = rule["field"], rule["parent_field"]
            cv, pv = data.get(child), data.get(parent)
            if usable(child, parent) and not _empty(cv) and not _empty(pv):
                table = self.catalogue.table(self.group.field(child).code_table or "")
                code = table.codes[cv]
                if code.parents and pv not in code.parents:
                    add(child, "cascade", value=cv, parent=pv, other=self.label(parent), other_en=self.label_en(parent))
        elif k in ("not_future", "past_year"):
            v = data.get(rule["field"])
            if usable(rule["field"]) and isinstance(v, int):
                year = _this_year()
                if k == "not_future" and v > year:
                    add(rule["field"], "future_year")
                if k == "past_year" and v >= year:
                    add(rule["field"], "past_year", year=year)
        elif k == "none_clears":
            f = rule["field"]
            v = data.get(f)
            if not usable(f) or _empty(v):
                return
            is_none = (v in rule["none"]) if not isinstance(v, list) else any(x in rule["none"] for x in v)
            other = {"other": self.label(f), "other_en": self.label_en(f)}
            if is_none:
                for fname in rule["fields"]:
                    if not _empty(data.get(fname)):
                        add(fname, "must_be_empty", **other)
            elif not partial:
                for fname in rule.get("required_otherwise", []):
                    if _empty(data.get(fname)):
                        add(fname, "required_when", values="非「无」/ not none", **other)
        elif k == "identity":
            self._identity(rule, data, add, usable, state)

    def _identity(self, rule: Rule, data: dict[str, Any], add: Any, usable: Any, state: dict[str, Any]) -> None:
        tf, nf, bf, gf = rule["type_field"], rule["number_field"], rule["birth_field"], rule["gender_field"]
        doc_type, number = data.get(tf), data.get(nf)
        if _empty(doc_type) or _empty(number) or not usable(tf, nf):
            return
        try:
            info = validate_identity(doc_type, number)
        except IdentityError as e:
            add(nf, "invalid_identity", reason_zh=e.reason_zh, reason_en=e.reason_en)
            return
        state["normalised"][nf] = info.number
        state["warnings"].extend({"field": nf, "message": w} for w in info.warnings)
        if info.birth_date and not _empty(data.get(bf)) and usable(bf) and data[bf] != info.birth_date.isoformat():
            add(bf, "birth_mismatch", expected=info.birth_date.isoformat())
        if info.gender and data.get(gf) in ("1", "2") and usable(gf) and data[gf] != info.gender:
            add(gf, "gender_mismatch")


# ------------------------------------------------------------------------------------------ public API


@dataclass(frozen=True)
class ValidatedRecord:
    data: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)


class GroupValidator:
    """Validates records of one record group (optionally for one school stage)."""

    def __init__(self, catalogue: Catalogue, group: RecordGroup, stage: str | None) -> None:
        self.catalogue = catalogue
        self.group = group
        self.stage = stage
        self.fields = tuple(f for f in group.fields if stage is None or f.stages is None or stage in f.stages)
        self._full = self._schema_class(partial_required=True)
        self._partial = self._schema_class(partial_required=False)

    def _schema_class(self, partial_required: bool) -> type[Schema]:
        checker = _RuleChecker(self.group, self.catalogue)
        group = self.group
        present = {f.code for f in self.fields}
        attrs: dict[str, Any] = {f.code: _marshmallow_field(f, self.catalogue, partial_required) for f in self.fields}

        class Meta:
            unknown = RAISE

        def run_rules(schema: Schema, data: dict[str, Any], **kw: Any) -> None:
            errors: dict[str, list[str]] = {}
            failed = set(schema._tmis_failed)  # type: ignore[attr-defined]
            for rule in group.rules:
                # rules naming a field outside this stage's subset do not apply
                if all(n in present for n in rule_field_names(rule)):
                    checker.check(rule, data, not partial_required, errors, failed, schema._tmis_state)  # type: ignore[attr-defined]
            if errors:
                raise MarshmallowError(errors)

        attrs["Meta"] = Meta
        attrs["_run_rules"] = validates_schema(skip_on_field_errors=False)(run_rules)
        return type(f"{group.code}Schema", (Schema,), attrs)

    def schema(self, *, partial: bool = False) -> Schema:
        """A fresh marshmallow schema instance (for callers that want marshmallow directly)."""
        s = (self._partial if partial else self._full)()
        s._tmis_failed = set()  # type: ignore[attr-defined]
        s._tmis_state = {"normalised": {}, "warnings": []}  # type: ignore[attr-defined]
        return s

    def validate(self, record: Mapping[str, Any], *, partial: bool = False) -> ValidatedRecord:
        """Validate and normalise one record.

        Raises:
            common.errors.ValidationError: with every failing field in ``details.errors``.
        """
        if not isinstance(record, Mapping):
            entry = self._entry("", "not_a_record", "记录应为对象", "a record must be an object", None)
            raise ValidationError(
                f"{self.group.code} {self.group.label}: a record must be a JSON object", errors=[entry]
            )
        # drop empty values first so "" and None mean "not filled" everywhere
        cleaned = {k: v for k, v in record.items() if not _empty(v)}
        schema = self.schema(partial=partial)
        # field-level pass first, so the rules know which fields failed
        field_errors = _field_errors(schema, cleaned)
        schema._tmis_failed = set(field_errors)  # type: ignore[attr-defined]
        try:
            data = schema.load(cleaned)
        except MarshmallowError as e:
            raise self._error(e.messages, cleaned) from None
        for k, v in schema._tmis_state["normalised"].items():  # type: ignore[attr-defined]
            data[k] = v
        return ValidatedRecord(dict(sorted(data.items())), list(schema._tmis_state["warnings"]))  # type: ignore[attr-defined]

    def _entry(self, fcode: str, _key: str, zh: str, en: str, value: Any) -> FieldError:
        label = self.group.field(fcode).label if fcode and self.group.has_field(fcode) else fcode
        return FieldError(self.group.code, fcode, zh, en, value, label=label, group_label=self.group.label)

    def _error(self, messages: Any, record: Mapping[str, Any]) -> ValidationError:
        entries: list[FieldError] = []
        for fcode, msgs in sorted((messages or {}).items()):
            if isinstance(msgs, dict):  # a list field reports per index
                msgs = [m for sub in msgs.values() for m in (sub if isinstance(sub, list) else [sub])]
            for m in msgs if isinstance(msgs, list) else [msgs]:
                value = record.get(fcode)
                if isinstance(value, str):  # echoed in the answer: never a character JSON or a sheet cannot hold
                    value = scrub(value)
                zh, en = _translate(str(m), value)
                entries.append(self._entry(scrub(str(fcode)), "", zh, en, value))
        summary = "; ".join(f"{e.group}.{e.field} {e.label}: {e.reason_en}" for e in entries[:5])
        return ValidationError(f"{self.group.code} {self.group.label} failed validation: {summary}", entries)


def _field_errors(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for name, fld in schema.fields.items():
        if name in data:
            try:
                fld.deserialize(data[name], name, data)
            except MarshmallowError as e:
                errors[name] = e.messages
    return errors


_VALIDATORS: dict[tuple[str, str | None, str, str | None], GroupValidator] = {}


def build_validator(catalogue: Catalogue, group_code: str, *, school_type: str | None = None) -> GroupValidator:
    """The validator of ``group_code``; with ``school_type`` (办学类型), restricted to that school's stage.

    Validators are cached per (catalogue version, custom-indicator version, group, stage): building the
    marshmallow classes costs far more than validating a record, and imports validate thousands.

    Raises:
        common.errors.ValidationError: the group is not collected for that school type.
    """
    group = catalogue.group(group_code)
    stage = None
    if school_type is not None:
        stage = catalogue.stage_of(school_type)
        if not group.applies_to(stage):
            raise ValidationError(
                f"record group {group.code} {group.label} is not collected for school type {school_type}",
                [
                    FieldError(
                        group.code,
                        "",
                        "本学校类型不采集此信息集",
                        "not collected for this school type",
                        school_type,
                        label="",
                        group_label=group.label,
                    )
                ],
            )
    key = (catalogue.version, catalogue.custom_version, group_code, stage)
    validator = _VALIDATORS.get(key)
    if validator is None:
        if len(_VALIDATORS) > 512:
            _VALIDATORS.clear()
        validator = _VALIDATORS[key] = GroupValidator(catalogue, group, stage)
    return validator
