"""The error contract: one JSON shape, and docs/errors.md documents every code."""

from __future__ import annotations

import re

import pytest

from common.errors import ErrorCode, FieldError, PermissionDeniedError, StorageConflictError, ValidationError
from tests.conftest import REPO


def test_body_shape():
    body = ValidationError("bad", [FieldError("JBXX", "XM", "必填", "is required", label="姓名")]).to_body()
    assert body == {
        "code": "validation_failed",
        "error": "Unprocessable Entity",
        "message": "bad",
        "details": {
            "errors": [
                {
                    "group": "JBXX",
                    "field": "XM",
                    "label": "姓名",
                    "reason_zh": "必填",
                    "reason_en": "is required",
                    "value": None,
                }
            ]
        },
    }
    assert StorageConflictError("dup").to_body()["error"] == "Conflict"


def test_a_field_error_keeps_where_it_is_and_only_says_what_is_set():
    e = FieldError("GZJL", "RZDWMC", "必填", "is required")
    assert e.to_json()["label"] == "RZDWMC"  # the label defaults to the code
    moved = e.at(index=2, row=7, column="任职单位名称(RZDWMC)")
    assert (moved.index, moved.row, moved.column) == (2, 7, "任职单位名称(RZDWMC)")
    assert {"index", "row", "column"} <= moved.to_json().keys() and "index" not in e.to_json()
    denied = PermissionDeniedError("no", field_errors=[e])
    assert denied.details["errors"] == [e.to_json()] and denied.field_errors == (e,)


def test_a_validation_error_names_at_least_one_field():
    with pytest.raises(TypeError):
        ValidationError("something is wrong")


def test_every_code_is_documented_and_nothing_else():
    text = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert documented == {c.value for c in ErrorCode}
