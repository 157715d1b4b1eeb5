"""``POST /api/v1/enrol``: a province enrols a key (its first, or a new one) with a one-time token."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session
from common.schemas import Out, Strict
from national_node.ledger import ledger
from national_node.registry import registry
from national_node.runtime import runtime

bp = Blueprint("registry", __name__, url_prefix="/api/v1", description="Province enrolment")


class EnrolIn(Strict):
    province = ma.fields.String(required=True)
    token = ma.fields.String(required=True)
    public_key = ma.fields.String(required=True, metadata={"description": "base64 of the raw Ed25519 public key"})


class EnrolOut(Out):
    trust_version = ma.fields.Integer()
    trust = ma.fields.List(ma.fields.Dict(), metadata={"description": "every trust version (DSSE envelopes)"})


@bp.route("/enrol")
class Enrol(MethodView):
    @bp.arguments(EnrolIn)
    @bp.response(200, EnrolOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Enrol a province key (its first, or a new one: rotation, recovery) with a one-time token; answers every
        trust version."""
        session, rt = get_session(), runtime()
        trust = registry.enrol(session, rt.keys(), rt.origin, body["province"], body["token"], body["public_key"])
        return {"trust_version": trust.version, "trust": [json.loads(d) for d in ledger.all_trust_documents(session)]}


BLUEPRINTS = (bp,)
