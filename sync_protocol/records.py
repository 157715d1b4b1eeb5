"""Core records: what a province sends about one teacher, one version at a time.

A core record (canonical JSON, one per line of a batch file)::

    {"teacher_number": "4400000000018", "province": "44", "version": 17, "op": "upsert",
     "fields": {"JBXX": {"XM": "李明", ...}, "XXJL": [{"HDXLM": "14", ...}], ...},
     "withheld": ["JBDY.JBGZ", "JBXX.X_JXJYBH", ...],
     "to_province": null}

* ``version`` is the province's gapless outbox version (per province, not per teacher);
* ``op``: ``upsert`` (the whole core view of the file), ``status_change`` (人员状态 changes such as
  retirement; ``fields`` carries at least ``JBXX.RYZTM``) or ``transfer_out`` (the teacher left for
  ``to_province``; ``fields`` may be empty);
* ``fields`` maps record-group codes to one object (single-record groups) or a list of objects; values
  are strings, integers, lists of strings or null — never floats;
* ``withheld`` lists, sorted and unique, every ``GROUP.FIELD`` the province holds but did not send
  (non-core catalogue fields and custom indicators), so an auditor can see what stayed home.

The record hash is the RFC 6962 leaf hash of the record's canonical bytes.
"""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any, NamedTuple

import orjson

from sync_protocol import merkle
from sync_protocol._schema import exact_keys, integer, one_of
from sync_protocol.canonical import (
    MAX_SAFE_INTEGER,
    beyond_bmp,
    canonical_bytes,
    parse_canonical,
    parse_canonical_unchecked_numbers,
)
from sync_protocol.errors import LimitExceededError, MalformedError
from sync_protocol.identifiers import PROVINCE_CODES, check_characters, check_province, check_teacher_number


class RecordOp(enum.StrEnum):
    """What a record does to the teacher's core record at the national node."""

    UPSERT = "upsert"
    STATUS_CHANGE = "status_change"
    TRANSFER_OUT = "transfer_out"

    @property
    def label(self) -> str:
        """The Chinese name (pages and reports)."""
        return _OP_LABELS[self]


_OP_LABELS = {RecordOp.UPSERT: "新增或更新", RecordOp.STATUS_CHANGE: "人员状态变动", RecordOp.TRANSFER_OUT: "跨省调出"}
OPS = frozenset(op.value for op in RecordOp)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}\Z")
_QUALIFIED = re.compile(r"^[A-Z][A-Z0-9_]{0,39}\.[A-Z][A-Z0-9_]{0,39}\Z")
MAX_RECORD_BYTES = 256 * 1024


class CoreRecord(NamedTuple):
    """One verified core record (immutable; a named tuple because a batch builds thousands of them)."""

    teacher_number: str
    province: str
    version: int
    op: str
    fields: dict[str, Any]
    withheld: tuple[str, ...]
    to_province: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "teacher_number": self.teacher_number,
            "province": self.province,
            "version": self.version,
            "op": self.op,
            "fields": self.fields,
            "withheld": list(self.withheld),
            "to_province": self.to_province,
        }

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.to_json())


_VALID_CODES: set[str] = set()  # codes already checked (a few hundred in practice; bounded below)
_VALID_QUALIFIED: set[str] = set()
_MEMO_LIMIT = 50_000
_STRINGS = frozenset({str, type(None)})  # exact value types of the common case (integers are range-checked)
_RECORD_KEYS = frozenset({"teacher_number", "province", "version", "op", "fields", "withheld", "to_province"})


def _code_ok(code: Any, pattern: re.Pattern[str], memo: set[str]) -> bool:
    if not isinstance(code, str):
        return False
    if code in memo:
        return True
    if not pattern.match(code):
        return False
    if len(memo) < _MEMO_LIMIT:
        memo.add(code)
    return True


def _known(withheld: list[Any]) -> bool:
    try:
        return _VALID_QUALIFIED.issuperset(withheld)
    except TypeError:  # an unhashable item: the per-item check refuses it
        return False


def _withheld_codes_ok(withheld: Any) -> bool:
    return isinstance(withheld, list) and (
        _known(withheld) or all(_code_ok(w, _QUALIFIED, _VALID_QUALIFIED) for w in withheld)
    )


def _check_value(v: Any, where: str) -> None:
    """Every value's type is checked here or by the common case in :func:`_check_fields` — which is what
    lets :func:`parse_record` use :func:`parse_canonical_unchecked_numbers`: floats and unsafe integers are
    refused here."""
    if v is None or isinstance(v, str):
        return
    if isinstance(v, int) and not isinstance(v, bool):
        if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
            return
        raise MalformedError(f"{where}: integer outside ±(2^53−1)")
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return
    raise MalformedError(f"{where}: values are strings, integers, lists of strings or null")


def _check_fields(fields: Any) -> None:
    if not isinstance(fields, dict):
        raise MalformedError("record.fields must be an object")
    for group, content in fields.items():
        if not _code_ok(group, _CODE, _VALID_CODES):
            raise MalformedError("record.fields: group codes are upper-case identifiers", group=group[:40])
        rows = content if isinstance(content, list) else [content]
        for row in rows:
            if not isinstance(row, dict):
                raise MalformedError(f"record.fields.{group} must be an object or a list of objects")
            if _VALID_CODES.issuperset(row) and _STRINGS.issuperset(map(type, row.values())):
                continue  # the common case, checked in C: known codes, strings and nulls
            for fcode, v in row.items():
                if not _code_ok(fcode, _CODE, _VALID_CODES):
                    raise MalformedError(f"record.fields.{group}: field codes are upper-case identifiers")
                _check_value(v, f"record.fields.{group}.{fcode}")


def record_from_json(obj: Any) -> CoreRecord:
    if not isinstance(obj, dict) or obj.keys() != _RECORD_KEYS:
        exact_keys(obj, set(_RECORD_KEYS), "record")  # raises, naming what is missing or unknown
    tn = check_teacher_number(obj["teacher_number"])
    province = check_province(obj["province"], "record.province")
    version = integer(obj, "version", "record", minimum=1)
    op = one_of(obj, "op", "record", OPS)
    _check_fields(obj["fields"])
    withheld = obj["withheld"]
    if not _withheld_codes_ok(withheld):
        raise MalformedError("record.withheld must be a list of GROUP.FIELD codes")
    if withheld != sorted(set(withheld)):
        raise MalformedError("record.withheld must be sorted and without repeats")
    to_province = obj["to_province"]
    if op == "transfer_out":
        check_province(to_province, "record.to_province")
        if to_province == province:
            raise MalformedError("record.to_province must differ from record.province")
    elif to_province is not None:
        raise MalformedError("record.to_province is only set for transfer_out")
    if op == "status_change" and "RYZTM" not in (obj["fields"].get("JBXX") or {}):
        raise MalformedError("a status_change record carries JBXX.RYZTM")
    return CoreRecord(tn, province, version, op, obj["fields"], tuple(withheld), to_province)


def parse_record(data: bytes, max_bytes: int = MAX_RECORD_BYTES) -> CoreRecord:
    """Parse canonical record bytes (refuses non-canonical bytes, so the hash identifies the record).

    Fast path: orjson proves the bytes canonical and :func:`record_from_json` checks the type of every value
    (refusing floats and unsafe integers, which that parse does not screen). Any refusal is decided again by
    the strict path, so the reason given is the strict parser's (a test checks both paths agree)."""
    if len(data) > max_bytes:
        raise LimitExceededError(f"record larger than {max_bytes} bytes", size=len(data))
    obj = parse_canonical_unchecked_numbers(data)
    if obj is not None:
        try:
            return record_from_json(obj)
        except MalformedError:
            pass
    return record_from_json(parse_canonical(data))


_TEACHER_NUMBERS = re.compile(r"(?:[0-9]{12}[0-9X]\n)*[0-9]{12}[0-9X]")  # with fullmatch: ASCII digits only
_STARTS_WITH_BRACE = operator.methodcaller("startswith", b"{")
_VALID_WITHHELD: set[tuple[str, ...]] = set()
_COLUMNS = operator.itemgetter(*sorted(_RECORD_KEYS))
_FIRST_TWO, _FIRST_TWELVE, _TWELFTH = (
    operator.itemgetter(slice(0, 2)),
    operator.itemgetter(slice(0, 12)),
    operator.itemgetter(12),
)


def parse_record_batch(lines: Sequence[bytes], max_bytes: int = MAX_RECORD_BYTES) -> list[CoreRecord] | None:
    """The records of a batch's lines, exactly as ``[parse_record(line) for line in lines]`` gives them, or None
    when any line needs a closer look — then the caller parses line by line, so an error names its record.
    A property test checks that it never accepts what :func:`parse_record` refuses, nor returns other values.

    Checked as a batch, which costs about half of parsing line by line:

    * canonical form: each line is parsed alone (so each value comes from exactly its line), then orjson
      encodes the list of values once and the result must equal ``[`` + the lines joined by ``,`` + ``]``.
      Every line starts with ``{``, so no line can end early or late: a line whose canonical encoding were a
      proper prefix of it would have trailing bytes after its object, which the parser refused, and the other
      way round the encoding would; hence each line equals the encoding of its own value. The BMP screen of
      :func:`parse_canonical_unchecked_numbers` runs once over all lines; numbers are not screened, because
      the checks below refuse floats and unsafe integers wherever they sit (as :func:`parse_record` does);
    * the schema: the common case — what :func:`record_from_json` accepts — checked with fewer operations
      (the withheld list is usually the same for every record of a batch and is checked once); anything
      else returns None."""
    if not lines:
        return []
    if max(map(len, lines)) > max_bytes or not all(map(_STARTS_WITH_BRACE, lines)):
        return None
    body = b",".join(lines)
    if beyond_bmp(body):
        return None
    try:
        values = list(map(orjson.loads, lines))
        encoded = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)  # "[" + body + "]", compared without a copy
        if (
            len(encoded) != len(body) + 2
            or encoded[0] != 0x5B
            or encoded[-1] != 0x5D
            or not encoded.startswith(body, 1)
        ):
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    try:
        return _records_if_plain(values)
    except TypeError:  # an unhashable value where a code belongs, a non-string joined: decided line by line
        return None


def _records_if_plain(values: list[Any]) -> list[CoreRecord] | None:
    """:func:`record_from_json` for every value, column by column (each check runs in C over the whole batch),
    or None where the batch is not the common case. Raises TypeError for unhashable or non-string values."""
    n = len(values)
    if set(map(type, values)) != {dict} or not all(map(operator.eq, map(dict.keys, values), repeat(_RECORD_KEYS))):
        return None
    fieldss, ops, provinces, tns, to_provinces, versions, withhelds = zip(*map(_COLUMNS, values), strict=True)
    # teacher numbers: n strings of 12 ASCII digits and a check character (the length pins n tokens to n
    # strings: no string can hold a newline), a known province prefix, the right check characters
    joined = "\n".join(tns)
    if (
        len(joined) != 14 * n - 1
        or not _TEACHER_NUMBERS.fullmatch(joined)
        or not PROVINCE_CODES.issuperset(map(_FIRST_TWO, tns))
    ):
        return None
    if check_characters(map(_FIRST_TWELVE, tns)) != "".join(map(_TWELFTH, tns)):
        return None
    if not PROVINCE_CODES.issuperset(provinces) or not OPS.issuperset(ops):
        return None
    if set(map(type, versions)) != {int} or min(versions) < 1 or max(versions) > MAX_SAFE_INTEGER:
        return None
    # fields: group codes, rows, value types — the common case in C, anything else by the record schema
    if set(map(type, fieldss)) != {dict}:
        return None
    contents = list(chain.from_iterable(map(dict.values, fieldss)))
    rows = [c for c in contents if type(c) is dict]
    if len(rows) != len(contents):  # groups of several rows
        lists = [c for c in contents if type(c) is list]
        more = list(chain.from_iterable(lists))
        if len(rows) + len(lists) != len(contents) or set(map(type, more)) - {dict}:
            return None
        rows += more
    if not (
        _VALID_CODES.issuperset(chain.from_iterable(fieldss))
        and _VALID_CODES.issuperset(chain.from_iterable(rows))
        and _STRINGS.issuperset(map(type, chain.from_iterable(map(dict.values, rows))))
    ):
        for fields in fieldss:
            try:
                _check_fields(fields)
            except MalformedError:
                return None
    # withheld: a few distinct lists recur (they follow the catalogue), each checked once (bounded memo)
    if set(map(type, withhelds)) != {list}:
        return None
    withheld_tuples = list(map(tuple, withhelds))
    if not _VALID_WITHHELD.issuperset(withheld_tuples):
        for t in set(withheld_tuples):
            if t not in _VALID_WITHHELD:
                if not _withheld_codes_ok(list(t)) or list(t) != sorted(set(t)):
                    return None
                if len(_VALID_WITHHELD) < _MEMO_LIMIT // 10:
                    _VALID_WITHHELD.add(t)
    # to_province and what a status change carries: an upsert without a destination needs nothing more; the few
    # other records (status changes, transfers out, anything odd) go through the record schema itself
    if to_provinces.count(None) != n or set(ops) != {"upsert"}:
        try:
            for value, op, to_province in zip(values, ops, to_provinces, strict=True):
                if op != "upsert" or to_province is not None:
                    record_from_json(value)
        except MalformedError:
            return None
    # tuple.__new__ is what CoreRecord._make calls (the generated __new__ costs a Python call per record)
    return list(
        map(
            tuple.__new__,
            repeat(CoreRecord),
            zip(tns, provinces, versions, ops, fieldss, withheld_tuples, to_provinces, strict=True),
        )
    )


def records_of_verified_lines(lines: Sequence[bytes]) -> list[CoreRecord]:
    """The records of record lines that :func:`sync_protocol.batch.verify_batch` has **already accepted**
    (elsewhere, e.g. in a worker process, on these very bytes): decoded without checking anything again. Equal
    to what verification returned, because accepted lines are canonical core records and decoding is
    deterministic. Never for bytes that were not verified."""
    values = list(map(orjson.loads, lines))
    return list(
        map(
            tuple.__new__,
            repeat(CoreRecord),
            zip(
                map(operator.itemgetter("teacher_number"), values),
                map(operator.itemgetter("province"), values),
                map(operator.itemgetter("version"), values),
                map(operator.itemgetter("op"), values),
                map(operator.itemgetter("fields"), values),
                map(tuple, map(operator.itemgetter("withheld"), values)),
                map(operator.itemgetter("to_province"), values),
                strict=True,
            ),
        )
    )


_FIELDS_START = b'{"fields":'
_FIELDS_END = b',"op":'


def fields_bytes(line: bytes) -> bytes:
    """The canonical bytes of ``fields`` inside a *verified* record line, as a slice (no re-encoding).

    In canonical JSON ``fields`` is the first member (keys sort ``fields`` < ``op`` < ``province`` < …) and
    ``op`` the second. Inside ``fields`` the byte sequence ``,"op":`` cannot occur: a quote inside a string is
    always escaped (``\\"``), and every object key there is a group or field code (``[A-Z][A-Z0-9_]*``). So
    the first occurrence ends the value. Only for lines :func:`parse_record` or :func:`parse_record_batch`
    accepted."""
    end = line.find(_FIELDS_END)
    if not line.startswith(_FIELDS_START) or end < 0:
        raise ValueError("not a verified core record line")
    return line[len(_FIELDS_START) : end]


def record_hash(data: bytes) -> bytes:
    return merkle.leaf_hash(data)
