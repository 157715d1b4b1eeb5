"""Signed province requests (docs/protocol.md §14): every call under ``/api/v1/provinces/<code>/`` carries
a signature by a key the trust in force lists for that province, and a nonce seen once in the replay
window.

Order of the checks (each failure has one code, docs/protocol.md §14.3):

1. no route matches the path → 404 ``not_found`` / 405 ``method_not_allowed`` (Flask's routing error, raised
   after this hook; never a 500);
2. a declared ``Content-Length`` above the route's limit → 413 ``protocol_limit_exceeded`` before the body is
   read by the application (bodies above the node's largest limit are refused by the HTTP server itself);
3. the signed-request headers (:func:`sync_protocol.request_auth.verify_request`), then the nonce.
"""

from __future__ import annotations

from flask import current_app, g, request

from common.db import utcnow
from common.errors import ErrorCode, TmisError
from common.http import get_session, runtime_of
from national_node.ledger import ledger
from national_node.provinces import provinces
from sync_protocol.errors import LimitExceededError
from sync_protocol.request_auth import SKEW, verify_request
from sync_protocol.transfer import MAX_TRANSFER_MESSAGE_BYTES

SMALL_BODY_BYTES = 64 * 1024  # inbox acks, digests and every other small JSON body
TRANSFER_BODY_BYTES = MAX_TRANSFER_MESSAGE_BYTES + 4096  # payload limit + the envelope around it
BUCKET_BODY_BYTES = 1024 * 1024  # one digest bucket's leaves (sync_protocol.digest.MAX_BUCKET_LEAVES)


def body_limit(endpoint: str | None) -> int:
    """The largest body a province route accepts (docs/protocol.md §11)."""
    if endpoint == "intake.Batches":
        return runtime_of(current_app).config.max_batch_bytes
    if endpoint == "transfers.TransferMessages":
        return TRANSFER_BODY_BYTES
    if endpoint == "reconcile.DigestBucket":
        return BUCKET_BODY_BYTES
    return SMALL_BODY_BYTES


def check_declared_length() -> None:
    limit = body_limit(request.endpoint)
    if request.content_length is not None and request.content_length > limit:
        raise LimitExceededError(
            f"request body of {request.content_length} bytes is above the limit of {limit} bytes",
            limit=limit,
            declared=request.content_length,
        )


def signed_path() -> str:
    """The request target exactly as it came on the wire (path and query, percent-encoding kept): what the
    province signed (docs/protocol.md §14.2). WSGI servers hand it over as ``REQUEST_URI``; without it the
    target is rebuilt from the undecoded parts."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw and raw.startswith("/"):
        return raw
    path = request.environ.get("PATH_INFO", "")
    query = request.environ.get("QUERY_STRING", "")
    return path + (f"?{query}" if query else "")


def authenticate_province() -> None:
    """Before every request: a declared body length above the route's limit is refused before the body is read;
    then, for a province request, verify the signed-request headers and remember the nonce."""
    if request.url_rule is None:
        return  # no such route: Flask answers 404/405 right after this hook
    check_declared_length()
    if not request.path.startswith("/api/v1/provinces/"):
        return
    session = get_session()
    now = utcnow()
    provinces.forget_old_nonces(session, now, 2 * SKEW, (request.view_args or {}).get("code"))  # write first
    path = signed_path()
    province, nonce = verify_request(
        request.headers, request.method, path, request.get_data(), ledger.current_trust(session), now
    )
    if province != (request.view_args or {}).get("code"):
        raise TmisError("signed for another province", code=ErrorCode.PROTOCOL_KEY_UNTRUSTED, http_status=403)
    provinces.remember_nonce(session, province, nonce, now)
    g.province = province
