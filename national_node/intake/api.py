"""``POST /api/v1/provinces/<code>/batches``: push one batch file (signed request)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session, keep_writes_on_error
from common.schemas import Out
from national_node.intake import intake
from national_node.runtime import runtime
from sync_protocol.errors import EquivocationError

bp = Blueprint("intake", __name__, url_prefix="/api/v1", description="Batch intake")


class RefusedOut(Out):
    version = ma.fields.Integer()
    teacher_number = ma.fields.String()
    reason = ma.fields.String()
    details = ma.fields.Dict()


class IntakeOut(Out):
    receipt = ma.fields.Dict(metadata={"description": "the signed receipt (leaf, index, inclusion proof, checkpoint)"})
    refused = ma.fields.List(ma.fields.Nested(RefusedOut))
    new = ma.fields.Boolean(metadata={"description": "false for an identical resend"})


@bp.route("/provinces/<code>/batches")
class Batches(MethodView):
    @bp.response(200, IntakeOut)
    def post(self, code: str) -> Any:
        """Push one batch file (signed request). 200 with the receipt, also for an identical resend."""
        rt = runtime()  # the declared length was checked against the limit before the body was read (api.auth)
        try:
            result = intake.intake(get_session(), rt.keys(), rt.origin, code, request.get_data())
        except EquivocationError:
            keep_writes_on_error()  # the evidence is kept although the request fails
            raise
        return {"receipt": json.loads(result.receipt), "refused": result.refused, "new": result.new}


BLUEPRINTS = (bp,)
