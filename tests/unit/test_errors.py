"""The error contract: one JSON shape, and docs/errors.md documents every code."""

from __future__ import annotations

import re

from common.errors import ErrorCode, StorageConflictError, ValidationError
from tests.conftest import REPO


def test_body_shape():
    body = ValidationError("bad", errors=[{"field": "XM"}]).to_body()
    assert body == {
        "code": "validation_failed",
        "error": "Unprocessable Entity",
        "message": "bad",
        "details": {"errors": [{"field": "XM"}]},
    }
    assert StorageConflictError("dup").to_body()["error"] == "Conflict"


def test_every_code_is_documented_and_nothing_else():
    text = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert documented == {c.value for c in ErrorCode}
