"""The national node's API shell for provinces (``/api/v1``, documented at ``/api/openapi.json``).

* ``POST /api/v1/enrol`` — a province enrols its first key with the one-time token (registry);
* ``GET /api/v1/trust``, ``GET /api/v1/checkpoint`` — public: every trust version, the newest checkpoint (ledger);
* ``POST /api/v1/provinces/<code>/batches`` — push a batch file (body), answer: the receipt (intake);
* ``POST /api/v1/provinces/<code>/transfers`` — push a signed transfer message, answer: the receipt (transfers);
* ``GET /api/v1/provinces/<code>/inbox?after=N``, ``POST …/inbox/ack`` — pull and acknowledge messages (inbox).

Calls under ``/provinces/<code>/`` must be signed by a key of that province (docs/protocol.md §14; the shell
checks them, :mod:`.auth`); protocol errors answer with their code (docs/errors.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, request
from flask_smorest import Blueprint

from common.http import json_error, make_api
from common.metrics import metrics_of
from national_node.api import auth
from sync_protocol.errors import ProtocolError


def protocol_error(e: ProtocolError) -> Any:
    if e.http_status >= 400 and request.url_rule is not None:  # a refused batch, message or request, by code
        refusals = current_app.extensions[REFUSALS]
        refusals.labels(request.url_rule.rule, (request.view_args or {}).get("code", "-"), e.code).inc()
    return json_error(e.code, e.http_status, e.message, {k: str(v) for k, v in e.details.items()})


REFUSALS = "tmis_refusals"


def register_api(app: Flask, blueprints: Iterable[Blueprint]) -> Any:
    api = make_api(app, "tmis national node")
    app.extensions[REFUSALS] = metrics_of(app).counter(
        "tmis_intake_refused_total",
        "Province requests refused with a protocol error (nothing stored), by route, province and code",
        ["route", "province", "code"],
    )
    app.register_error_handler(ProtocolError, protocol_error)
    app.before_request(auth.authenticate_province)
    for bp in blueprints:
        api.register_blueprint(bp)
    return api
