"""The national node's API for provinces (``/api/v1``), documented at ``/api/openapi.json``.

* ``POST /api/v1/enrol`` — a province enrols its first key with the one-time token;
* ``GET /api/v1/trust``, ``GET /api/v1/checkpoint`` — public: every trust version, the newest checkpoint;
* ``POST /api/v1/provinces/<code>/batches`` — push a batch file (body), answer: the receipt;
* ``POST /api/v1/provinces/<code>/transfers`` — push a signed transfer message, answer: the receipt;
* ``GET /api/v1/provinces/<code>/inbox?after=N``, ``POST …/inbox/ack`` — pull and acknowledge messages.

Calls under ``/provinces/<code>/`` must be signed by a key of that province (docs/protocol.md §14);
nonces are remembered for the replay window. Protocol errors answer with their code (docs/errors.md).
"""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from common.db import utcnow
from common.errors import ErrorCode, TmisError
from common.http import get_session, json_error
from national_node.models import RequestNonce
from national_node.services import inbox, intake, ledger, registry, transfers
from sync_protocol.errors import EquivocationError, ProtocolError
from sync_protocol.request_auth import SKEW, verify_request

BATCH_TYPE = "application/vnd.tmis.batch.v1"


class EnrolIn(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    province = ma.fields.String(required=True)
    token = ma.fields.String(required=True)
    public_key = ma.fields.String(required=True, metadata={"description": "base64 of the raw Ed25519 public key"})


class AckIn(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    seq = ma.fields.Integer(required=True, validate=ma.validate.Range(0))


def keys() -> ledger.NodeKeys:
    return current_app.extensions["tmis_keys"]()


def origin() -> str:
    return current_app.extensions["tmis_config"].log_origin


def protocol_error(e: ProtocolError) -> Any:
    return json_error(e.code, e.http_status, e.message, {k: str(v) for k, v in e.details.items()})


def authenticate_province() -> None:
    """Verify the signed-request headers of calls under /provinces/<code>/ (docs/protocol.md §14)."""
    if not request.path.startswith("/api/v1/provinces/"):
        return
    session = get_session()
    now = utcnow()
    # Write first (expired nonces go, whatever this request turns out to be): every province request writes
    # its nonce, and on SQLite (WAL) a transaction that read first cannot start writing once another request
    # committed in between — it fails at once with "database is locked" (two batches in flight hit this).
    # Starting with the write waits for the lock instead.
    session.execute(delete(RequestNonce).where(RequestNonce.seen_at < now - 2 * SKEW))
    path = request.full_path.rstrip("?") if request.query_string else request.path
    province, nonce = verify_request(
        request.headers, request.method, path, request.get_data(), ledger.current_trust(session), now
    )
    if province != request.view_args.get("code"):
        raise TmisError("signed for another province", code=ErrorCode.PROTOCOL_KEY_UNTRUSTED, http_status=403)
    try:
        with session.begin_nested():
            session.add(RequestNonce(province_code=province, nonce=nonce, seen_at=now))
    except IntegrityError:
        raise TmisError(
            "replayed request (nonce already seen)", code=ErrorCode.PROTOCOL_SIGNATURE_INVALID, http_status=401
        ) from None
    g.province = province


bp = Blueprint("sync", __name__, url_prefix="/api/v1", description="tmis-sync/1 endpoints for provinces")


@bp.route("/enrol")
class Enrol(MethodView):
    @bp.arguments(EnrolIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Enrol a province's first key with the one-time token; answers every trust version."""
        session = get_session()
        trust = registry.enrol(session, keys(), origin(), body["province"], body["token"], body["public_key"])
        return {"trust_version": trust.version, "trust": [json.loads(d) for d in ledger.all_trust_documents(session)]}


@bp.route("/trust")
class Trust(MethodView):
    def get(self) -> Any:
        """Every trust version (DSSE envelopes), oldest first."""
        return {"trust": [json.loads(d) for d in ledger.all_trust_documents(get_session())]}


@bp.route("/checkpoint")
class CheckpointView(MethodView):
    def get(self) -> Any:
        """The newest signed checkpoint of the acceptance log (text/plain, C2SP signed note)."""
        return Response(ledger.checkpoint(get_session(), keys(), origin()), mimetype="text/plain; charset=utf-8")


@bp.route("/provinces/<code>/batches")
class Batches(MethodView):
    def post(self, code: str) -> Any:
        """Push one batch file (signed request). 200 with the receipt, also for an identical resend."""
        session = get_session()
        limit = current_app.extensions["tmis_config"].max_batch_bytes
        if request.content_length and request.content_length > limit:
            return json_error(ErrorCode.PROTOCOL_LIMIT_EXCEEDED, 413, f"batch larger than {limit} bytes")
        try:
            result = intake.intake(session, keys(), origin(), code, request.get_data())
        except EquivocationError as e:
            session.commit()  # keep the evidence although the request fails
            return protocol_error(e)
        except ProtocolError as e:
            return protocol_error(e)
        return {"receipt": json.loads(result.receipt), "refused": result.refused, "new": result.new}


@bp.route("/provinces/<code>/transfers")
class TransferMessages(MethodView):
    def post(self, code: str) -> Any:
        """Push one province-signed transfer message (DSSE envelope, signed request). 200 with the receipt of
        its log leaf, also for an identical resend; 409 ``protocol_transfer_state`` / ``protocol_transfer_owner``
        when it does not fit the transfer."""
        session = get_session()
        transfers.expire_due(session, keys())  # an answer after the deadline meets an expired transfer
        session.commit()
        try:
            receipt, new = transfers.accept(session, keys(), origin(), code, request.get_data())
        except ProtocolError as e:
            return protocol_error(e)
        return {"receipt": json.loads(receipt), "new": new}


@bp.route("/provinces/<code>/inbox")
class Inbox(MethodView):
    def get(self, code: str) -> Any:
        """Messages for the province after ?after=N (signed request)."""
        after = request.args.get("after", "0")
        if not after.isdigit():
            return json_error(ErrorCode.BAD_REQUEST, 400, "after must be a non-negative integer")
        msgs = inbox.pull(get_session(), code, int(after), int(request.args.get("limit", "100")))
        return {"messages": [json.loads(m.envelope) for m in msgs]}


@bp.route("/provinces/<code>/inbox/ack")
class InboxAck(MethodView):
    @bp.arguments(AckIn)
    def post(self, body: dict[str, Any], code: str) -> Any:
        """Acknowledge every message up to seq."""
        return {"acked": inbox.ack(get_session(), code, body["seq"])}


def register(app: Flask, api: Any) -> None:
    @app.errorhandler(ProtocolError)
    def _protocol(e: ProtocolError) -> Any:
        return protocol_error(e)

    app.before_request(authenticate_province)
    api.register_blueprint(bp)
