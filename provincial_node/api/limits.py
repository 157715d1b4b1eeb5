"""What a JSON body may hold, checked before any view parses it (the views' schemas then check the shape).

Python's JSON parser accepts what no field of tmis can hold, and some of it would surface as a database error
(a 500) instead of an answer naming the problem. Refused here with 400 ``bad_request``:

* integers outside the signed 64-bit range (``2**70``): no column holds them;
* ``NaN``, ``Infinity`` (not JSON at all, but Python's parser takes them);
* lone surrogates (``"\\ud800"``): not characters, cannot be stored as UTF-8;
* nesting deeper than :data:`MAX_DEPTH`.

Ids beyond the INTEGER columns but inside 64 bits are refused by the schemas' id fields (422, naming the
field); ids in URLs beyond them match no route (404, :class:`common.http.IdConverter`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from common.errors import BadRequestError

INT64 = 2**63
MAX_DEPTH = 64


def _int(text: str) -> int:
    value = int(text)
    if not -INT64 <= value < INT64:
        raise BadRequestError(
            "an integer in the body is out of range (signed 64 bits)",
            details={"value": text[:40] + "…" * (len(text) > 40)},
        )
    return value


def _constant(name: str) -> Any:
    raise BadRequestError(f"{name} is not a JSON number", details={"value": name})


def _walk(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadRequestError(f"the body is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError(
                "the body holds a lone surrogate (\\ud800-\\udfff), which is not a character"
            ) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(k, depth + 1)
            _walk(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _walk(v, depth + 1)


def check_json_body() -> None:
    """``before_request``: a JSON body holds only what tmis can store."""
    if not request.path.startswith("/api/") or not request.is_json:
        return
    data = request.get_data(cache=True)
    if not data:
        return
    try:
        value = json.loads(data, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise BadRequestError(f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        return  # not JSON at all: the view's parser answers that, as it always did
    _walk(value)
