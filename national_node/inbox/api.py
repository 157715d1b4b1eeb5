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

bp = Blueprint("inbox", __name__, url_prefix="/api/v1", description="Messages routed to a province")


class AckIn(Strict):
    seq = ma.fields.Integer(required=True, validate=ma.validate.Range(0))


class AckOut(Out):
    acked = ma.fields.Integer()


class MessagesOut(Out):
    messages = ma.fields.List(ma.fields.Dict(), metadata={"description": "signed inbox messages (DSSE envelopes)"})


@bp.route("/provinces/<code>/inbox")
class Inbox(MethodView):
    @bp.response(200, MessagesOut)
    def get(self, code: str) -> Any:
        """Messages for the province after ?after=N (signed request)."""
        after = request.args.get("after", "0")
        if not after.isdigit():
            return json_error(ErrorCode.BAD_REQUEST, 400, "after must be a non-negative integer")
        msgs = routing.pull(get_session(), code, int(after), int(request.args.get("limit", "100")))
        return {"messages": [json.loads(m.envelope) for m in msgs]}


@bp.route("/provinces/<code>/inbox/ack")
class InboxAck(MethodView):
    @bp.arguments(AckIn)
    @bp.response(200, AckOut)
    def post(self, body: dict[str, Any], code: str) -> Any:
        """Acknowledge every message up to seq."""
        return {"acked": routing.ack(get_session(), code, body["seq"])}


BLUEPRINTS = (bp,)
