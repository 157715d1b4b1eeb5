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

from flask import Flask
from flask_smorest import Blueprint

from common.http import json_error, make_api
from national_node.api import auth
from sync_protocol.errors import ProtocolError


def protocol_error(e: ProtocolError) -> Any:
    return json_error(e.code, e.http_status, e.message, {k: str(v) for k, v in e.details.items()})


def register_api(app: Flask, blueprints: Iterable[Blueprint]) -> Any:
    api = make_api(app, "tmis national node")
    app.register_error_handler(ProtocolError, protocol_error)
    app.before_request(auth.authenticate_province)
    for bp in blueprints:
        api.register_blueprint(bp)
    return api
