"""The strict record parser's fast paths accept exactly what the full strict path accepts."""

from __future__ import annotations

import contextlib
import json

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol import errors as E
from sync_protocol.canonical import parse_canonical, parse_json
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.records import CoreRecord, fields_bytes, parse_record, parse_record_batch, record_from_json

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet=st.characters(codec="utf-8"), max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


def _reference(raw: bytes):
    """The full strict path alone: parse strictly, then compare with the rfc8785 package's bytes."""
    try:
        value = parse_json(raw)
        return ("ok", value) if rfc8785.dumps(value) == raw else ("refused", None)
    except (E.MalformedError, rfc8785.CanonicalizationError, UnicodeEncodeError):
        return ("refused", None)


def _outcome(parse, arg):
    """("ok", value) or ("refused", None): how one of our parsers judged its input."""
    try:
        return ("ok", parse(arg))
    except E.MalformedError:
        return ("refused", None)


def _variants(value) -> list[bytes]:
    out = []
    for kw in (
        {},
        {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": True},
        {"ensure_ascii": True, "separators": (",", ":"), "sort_keys": True},
    ):
        with contextlib.suppress(UnicodeEncodeError, ValueError):
            out.append(json.dumps(value, **kw).encode("utf-8"))
    with contextlib.suppress(rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        out.append(rfc8785.dumps(value))
    with contextlib.suppress(orjson.JSONEncodeError):  # the fast path's own encoder, floats and big ints included
        out.append(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return out


@settings(max_examples=500)
@given(_json)
def test_parse_canonical_agrees_with_the_full_strict_path(value):
    for raw in _variants(value):
        assert _outcome(parse_canonical, raw) == _reference(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":1}',
        b'{"a":1,"a":2}',
        b'{"b":1,"a":2}',
        b'{"a":1.0}',
        b'{"a":NaN}',
        b'{"a":9007199254740992}',
        b'{"a":"\\u00e9"}',
        b'{"a":"\\ud800"}',
        b'{"a": 1}',
        b"[" * 40 + b"]" * 40,
        b'{"\xf0\x9f\x98\x80":1,"a":2}',
        # number tokens the fast path must leave to the strict path (each round-trips through orjson unchanged)
        b'{"a":1.5}',
        b"[1.5]",
        b"[0,-2.5]",
        b'{"a":12345678901234567}',
        b"[-9007199254740992]",
        b"[9007199254740991]",
        b"[900719925474099]",
        b"1",
        b'"a"',
        b"null",
        b'{"a":"x:1.5","b":",12345678901234567"}',
        b'{"a":"\\\\ud800"}',
        b'{"a":{"b":[]}}',
        b"\xef\xbb\xbf{}",
        b"{}x",
        b'{"a":"\xed\xa0\x80"}',
    ],
)
def test_refusals_and_fallbacks_match(raw):
    assert _outcome(parse_canonical, raw) == _reference(raw)


def _record(**change):
    base = CoreRecord(
        make_teacher_number("44", 1), "44", 1, "upsert", {"JBXX": {"XM": "李明", "CSNY": "1990-01"}}, ("JBDY.JBGZ",)
    ).to_json()
    return {**base, **change}


@pytest.mark.parametrize(
    "change",
    [
        {"fields": {"JBXX": {"XM": True}}},  # a bool is not an integer here
        {"fields": {"JBXX": {"XM": 1.5}}},
        {"fields": {"JBXX": {"xm": "李明"}}},  # field codes are upper-case
        {"fields": {"JBXX": {"XM": ["a", 1]}}},
        {"withheld": [["JBDY.JBGZ"]]},  # unhashable: refused, not a crash
        {"withheld": ["JBDY.JBGZ", "JBDY.JBGZ"]},
        {"withheld": ["jbdy.jbgz"]},
    ],
)
def test_record_schema_refusals_survive_the_memoised_checks(change):
    record_from_json(_record())  # warm the memo of valid codes first
    with pytest.raises(E.MalformedError):
        record_from_json(_record(**change))


def test_a_valid_record_round_trips():
    rec = record_from_json(_record())
    assert parse_record(rec.to_bytes()) == rec


_edges = st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, -(2**63) - 1, 2**64, 2**65, 1e16, 0.5])
_any_value = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | _edges
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=4)
    | st.lists(st.text(max_size=3) | st.integers(min_value=-(2**66), max_value=2**66) | st.floats(), max_size=2)
)


def _record_reference(raw: bytes):
    """Strict parse, rfc8785 comparison, then the schema: what parse_record must agree with."""
    status, value = _reference(raw)
    if status != "ok":
        return ("refused", None)
    try:
        return ("ok", record_from_json(value))
    except E.MalformedError:
        return ("refused", None)


@settings(max_examples=400)
@given(
    row=st.dictionaries(st.sampled_from(["XM", "CSNY", "GJDQM", "x"]), _any_value, max_size=3),
    version=st.integers(min_value=-5, max_value=2**64) | _edges | st.floats(allow_nan=False) | st.booleans(),
    to_province=st.none() | st.sampled_from(["11", "44"]) | st.integers(min_value=0, max_value=99),
)
def test_parse_record_fast_path_agrees_with_the_strict_path(row, version, to_province):
    """parse_record's fast path does not screen numbers: the record schema must refuse every float and
    unsafe integer wherever it sits, exactly as the strict parser does."""
    obj = {**_record(), "version": version, "to_province": to_province, "fields": {"JBXX": row}}
    for raw in _variants(obj):
        assert _outcome(parse_record, raw) == _record_reference(raw)


@settings(max_examples=600)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["XM", "CSNY", "GJDQM", "x"]), _any_value, max_size=3),
            # mostly valid choices, so that whole batches are valid but for one value often enough
            st.sampled_from([1, 1, 1, 2, 2**53 - 1, 2**53, 0, 1.5, True]),
            st.sampled_from([None, None, None, None, "11", "44", 44]),
            st.sampled_from(["upsert", "upsert", "upsert", "status_change", "transfer_out", "x"]),
            st.sampled_from(
                [
                    ["JBDY.JBGZ"],
                    ["JBDY.JBGZ"],
                    ["JBDY.JBGZ"],
                    [],
                    ["JBDY.JBGZ", "JBDY.JBGZ"],
                    ["jbdy.jbgz"],
                    ["A.B", "JBDY.JBGZ"],
                ]
            ),
            st.integers(min_value=0, max_value=5),
            st.sampled_from(["row", "row", "rows", "rows+bad"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_parse_record_batch_never_accepts_what_parse_record_refuses(specs):
    """The batch parser returns exactly parse_record's values, or None (then the caller parses line by line)."""
    lines = []
    for row, version, to_province, op, withheld, variant, shape in specs:
        group = {"row": row, "rows": [row, row], "rows+bad": [row, [row]]}[shape]
        obj = {
            **_record(),
            "version": version,
            "to_province": to_province,
            "op": op,
            "withheld": withheld,
            "fields": {"JBXX": {"RYZTM": "100"}, "XXJL": group},
        }
        variants = [v for v in _variants(obj) if b"\n" not in v]
        if variants:
            lines.append(variants[variant % len(variants)])
    if not lines:
        return
    status, expected = _outcome(lambda ls: [parse_record(line) for line in ls], lines)
    got = parse_record_batch(lines)
    if got is not None:
        assert (status, expected) == ("ok", got)


def test_parse_record_batch_takes_plain_batches_and_leaves_the_rest_to_parse_record():
    recs = [record_from_json(_record(teacher_number=make_teacher_number("44", i), version=i)) for i in range(1, 6)]
    lines = [r.to_bytes() for r in recs]
    assert parse_record_batch(lines) == recs
    assert parse_record_batch([]) == []
    # every line must be canonical on its own, not only the lines together
    assert parse_record_batch([lines[0] + b" ", *lines[1:]]) is None
    assert parse_record_batch([lines[0][:-1], b"}" + lines[1]]) is None
    assert parse_record_batch([lines[0] + b"," + lines[1], *lines[2:]]) is None
    # a later record's bad withheld list is checked although an earlier one was valid
    bad = _record(withheld=["JBDY.JBGZ", "JBDY.JBGZ"])
    assert parse_record_batch([lines[0], rfc8785.dumps(bad)]) is None
    # a teacher number holding a newline cannot pass as two (the numbers are checked joined by newlines)
    two = make_teacher_number("44", 1) + "\n" + make_teacher_number("44", 2)
    assert parse_record_batch([rfc8785.dumps(_record(teacher_number=two))]) is None
    # the size limit is the caller's
    assert parse_record_batch(lines, max_bytes=len(lines[0]) - 1) is None


def test_parse_record_batch_checks_groups_of_several_rows():
    def line(i, fields):
        return rfc8785.dumps(_record(teacher_number=make_teacher_number("44", i), version=i, fields=fields))

    good = [
        line(1, {"JBXX": {"XM": "李明"}, "XXJL": [{"XLM": "14"}, {"XLM": "21", "RXNY": "2001-09"}]}),
        line(2, {"JBXX": {"XM": "王芳", "N": 3}, "XXJL": []}),
    ]
    assert parse_record_batch(good) == [parse_record(x) for x in good]
    for fields in (
        {"XXJL": [{"XLM": "14"}, "x"]},
        {"XXJL": [{"XLM": 1.5}]},
        {"XXJL": [{"xlm": "14"}]},
        {"XXJL": "x"},
        {"XXJL": [[{"XLM": "14"}]]},
        {"xxjl": [{"XLM": "14"}]},
    ):
        assert parse_record_batch([good[0], line(3, fields)]) is None


_text = st.text(
    alphabet=st.sampled_from(['"', ",", ":", "o", "p", "{", "}", "\\", "\n", "李", "a", "\x00"]), max_size=12
)
_value = st.none() | _text | st.lists(_text, max_size=2) | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["JBXX", "XXJL", "O_P"]),
        st.dictionaries(st.sampled_from(["XM", "OP", "P"]), _value, max_size=3)
        | st.lists(st.dictionaries(st.sampled_from(["XM", "OP"]), _text, max_size=2), max_size=2),
        max_size=3,
    ),
    st.sampled_from(["upsert", "status_change", "transfer_out"]),
)
def test_fields_bytes_is_the_canonical_encoding_of_fields(fields, op):
    """The slice the national store keeps equals the canonical encoding of the verified ``fields``, whatever
    quotes, commas and ``op``-like text the values hold."""
    if op == "status_change":
        fields = {**fields, "JBXX": {"RYZTM": "100"}}
    line = rfc8785.dumps(_record(fields=fields, op=op, to_province="11" if op == "transfer_out" else None))
    record = parse_record(line)
    assert fields_bytes(line) == rfc8785.dumps(record.fields)
    assert orjson.loads(fields_bytes(line)) == fields


def test_fields_bytes_refuses_what_is_not_a_record_line():
    with pytest.raises(ValueError, match="not a verified core record line"):
        fields_bytes(b'{"op":"upsert"}')
    with pytest.raises(ValueError, match="not a verified core record line"):
        fields_bytes(b'{"fields":{}}')  # no op member
