"""``GET /api/v1/trust`` and ``GET /api/v1/checkpoint``: public."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session
from common.schemas import Out
from national_node.ledger import ledger
from national_node.runtime import runtime

bp = Blueprint("ledger", __name__, url_prefix="/api/v1", description="Trust metadata and the acceptance log")


class TrustOut(Out):
    trust = ma.fields.List(ma.fields.Dict(), metadata={"description": "every trust version, oldest first"})


@bp.route("/trust")
class Trust(MethodView):
    @bp.response(200, TrustOut)
    def get(self) -> Any:
        """Every trust version (DSSE envelopes), oldest first."""
        return {"trust": [json.loads(d) for d in ledger.all_trust_documents(get_session())]}


@bp.route("/checkpoint")
class CheckpointView(MethodView):
    @bp.response(200, content_type="text/plain", description="C2SP signed note")
    def get(self) -> Any:
        """The newest signed checkpoint of the acceptance log (text/plain, C2SP signed note)."""
        rt = runtime()
        note = ledger.checkpoint(get_session(), rt.keys(), rt.origin)
        return Response(note, mimetype="text/plain; charset=utf-8")


BLUEPRINTS = (bp,)
