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
