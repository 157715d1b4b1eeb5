"""``POST /api/v1/provinces/<code>/transfers``: push one province-signed transfer message (signed request)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session
from common.schemas import Out
from national_node.runtime import runtime
from national_node.transfers import broker

bp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Cross-province transfer messages")


class MessageReceiptOut(Out):
    receipt = ma.fields.Dict()
    new = ma.fields.Boolean()


@bp.route("/provinces/<code>/transfers")
class TransferMessages(MethodView):
    @bp.response(200, MessageReceiptOut)
    def post(self, code: str) -> Any:
        """Push one province-signed transfer message (DSSE envelope, signed request). 200 with the receipt of
        its log leaf, also for an identical resend; 409 ``protocol_transfer_state`` / ``protocol_transfer_owner``
        when it does not fit the transfer."""
        session, rt = get_session(), runtime()
        broker.expire_due(session, rt.keys())  # an answer after the deadline meets an expired transfer
        session.commit()
        receipt, new = broker.accept(session, rt.keys(), rt.origin, code, request.get_data())
        return {"receipt": json.loads(receipt), "new": new}


BLUEPRINTS = (bp,)
