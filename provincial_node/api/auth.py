"""The API's front door: bearer tokens (only their SHA-256 is stored), the first-login password rule, and the
request's context."""

from __future__ import annotations

import dataclasses

from flask import request

from common.errors import AuthError, PermissionDeniedError
from common.http import get_session
from provincial_node.accounts import second_factor, tokens
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.api import ALLOWED_BEFORE_PASSWORD_CHANGE, PUBLIC_ENDPOINTS
from provincial_node.context import runtime, set_current_context


def authenticate_request() -> None:
    """Before every ``/api/v1/`` request: who calls, and the context the views hand to the services."""
    if not request.path.startswith("/api/v1/"):
        return
    session = get_session()
    rt = runtime()
    if request.endpoint in PUBLIC_ENDPOINTS:
        set_current_context(rt.context(session))
        return
    token = tokens.bearer_token(request.headers)
    if not token:
        raise AuthError("missing bearer token (POST /api/v1/auth/login)")
    account = tokens.authenticate(session, token, settings=rt.settings)
    actor = actor_for(session, account)
    if second_factor.required(rt.context(session), account):  # its step-up window counts from the token's key check
        row = tokens.token_row(session, token)
        actor = dataclasses.replace(
            actor, second_factor_required=True, second_factor_at=row.second_factor_at if row else None
        )
    set_current_context(rt.context(session, actor))
    if account.must_change_password and request.endpoint not in ALLOWED_BEFORE_PASSWORD_CHANGE:
        raise PermissionDeniedError(
            "change the initial password first (POST /api/v1/auth/password)",
            details={"reason": "password_change_required"},
        )
