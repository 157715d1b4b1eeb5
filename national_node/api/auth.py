"""Signed province requests (docs/protocol.md §14): every call under ``/api/v1/provinces/<code>/`` carries
a signature by a key the trust in force lists for that province, and a nonce seen once in the replay
window."""

from __future__ import annotations

from flask import g, request

from common.db import utcnow
from common.errors import ErrorCode, TmisError
from common.http import get_session
from national_node.ledger import ledger
from national_node.provinces import provinces
from sync_protocol.request_auth import SKEW, verify_request


def authenticate_province() -> None:
    """Before every province request: verify the signed-request headers and remember the nonce."""
    if not request.path.startswith("/api/v1/provinces/"):
        return
    session = get_session()
    now = utcnow()
    provinces.forget_old_nonces(session, now, 2 * SKEW)  # write first (see there)
    path = request.full_path.rstrip("?") if request.query_string else request.path
    province, nonce = verify_request(
        request.headers, request.method, path, request.get_data(), ledger.current_trust(session), now
    )
    if province != request.view_args.get("code"):
        raise TmisError("signed for another province", code=ErrorCode.PROTOCOL_KEY_UNTRUSTED, http_status=403)
    provinces.remember_nonce(session, province, nonce, now)
    g.province = province
