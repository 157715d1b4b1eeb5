"""marshmallow base schemas both nodes' APIs build on (In schemas refuse unknown keys; Out schemas document
responses in the OpenAPI document)."""

from __future__ import annotations

import marshmallow as ma


class Strict(ma.Schema):
    """A request body: unknown keys are refused (a typo must not be silently ignored)."""

    class Meta:
        unknown = ma.RAISE


class Query(ma.Schema):
    """Query-string arguments: unknown keys are ignored (links may carry more than a view reads)."""

    class Meta:
        unknown = ma.EXCLUDE


class Out(ma.Schema):
    """A response body (dump only)."""


# Database ids are INTEGER columns (32-bit on PostgreSQL): an id outside 1..MAX_ID cannot exist. Bodies are
# JSON, so their integers are strict (1.5 and "5" are refused, not truncated or converted); query strings are
# text, so there the field converts (and still refuses "1.5").
MAX_ID = 2**31 - 1


def id_field(*, query: bool = False, **kw: object) -> ma.fields.Integer:
    """An id in a body (or, ``query=True``, a query string): an integer 1..MAX_ID."""
    return ma.fields.Integer(strict=not query, validate=ma.validate.Range(1, MAX_ID), **kw)  # type: ignore[arg-type]


def count_field(*, query: bool = False, maximum: int = MAX_ID, **kw: object) -> ma.fields.Integer:
    """A non-negative integer (an offset, an index) bounded by ``maximum``."""
    return ma.fields.Integer(strict=not query, validate=ma.validate.Range(0, maximum), **kw)  # type: ignore[arg-type]
