"""``GET /api/v1/provinces/<code>/inbox?after=N`` and ``POST …/inbox/ack`` (signed requests)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.errors import ErrorCode
from common.http import get_session, json_error
from common.schemas import Out, Strict
from national_node.inbox import routing
from national_node.runtime import runtime

bp = Blueprint("inbox", __name__, url_prefix="/api/v1", description="Messages routed to a province")


class AckIn(Strict):
    seq = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(0))  # 1.5, "1", true refused


class AckOut(Out):
    acked = ma.fields.Integer()


class MessagesOut(Out):
    messages = ma.fields.List(ma.fields.Dict(), metadata={"description": "signed inbox messages (DSSE envelopes)"})


@bp.route("/provinces/<code>/inbox")
class Inbox(MethodView):
    @bp.response(200, MessagesOut)
    def get(self, code: str) -> Any:
        """Messages for the province after ?after=N (signed request)."""
        after, limit = request.args.get("after", "0"), request.args.get("limit", "100")
        if not (after.isascii() and after.isdigit() and limit.isascii() and limit.isdigit()) or len(after + limit) > 30:
            return json_error(ErrorCode.BAD_REQUEST, 400, "after and limit must be non-negative decimal integers")
        msgs = routing.pull(get_session(), runtime().keys(), code, int(after), int(limit))
        return {"messages": [json.loads(m.envelope) for m in msgs]}


@bp.route("/provinces/<code>/inbox/ack")
class InboxAck(MethodView):
    @bp.arguments(AckIn)
    @bp.response(200, AckOut)
    def post(self, body: dict[str, Any], code: str) -> Any:
        """Acknowledge every message up to seq."""
        return {"acked": routing.ack(get_session(), runtime().keys(), code, body["seq"])}


BLUEPRINTS = (bp,)
