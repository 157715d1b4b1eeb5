"""The provincial node's JSON API shell (``/api/v1``, OpenAPI at ``/api/openapi.json``).

Every endpoint except ``POST /api/v1/auth/login`` needs ``Authorization: Bearer <token>``; a user who must
change the initial password may only call ``/auth/password``, ``/me`` and ``/auth/logout`` until they do.
The shell authenticates (:mod:`.auth`), builds the request's
:class:`~provincial_node.context.ProvinceContext`, and registers the areas' blueprints and its own operator
endpoints (:mod:`.sync`). Views are thin: parse, call a service with the context, return an Out schema; the
request owns the transaction (committed on success, rolled back on any error). Out-of-scope objects answer
404.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask_smorest import Blueprint

from common.http import make_api
from provincial_node.api import auth, limits, sync


def register_api(app: Flask, blueprints: Iterable[Blueprint], title: str) -> Any:
    """The OpenAPI-documented API: the auth hook, the areas' blueprints, the shell's own."""
    api = make_api(app, title)
    app.before_request(limits.check_json_body)
    app.before_request(auth.authenticate_request)
    for bp in (*blueprints, *sync.BLUEPRINTS):
        api.register_blueprint(bp)
    return api
