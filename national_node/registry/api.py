"""``POST /api/v1/enrol``: a province enrols a key (its first, or a new one) with a one-time token.
``GET /api/v1/provinces/<code>/seal-key`` and ``POST …/seal-keys`` (signed requests): the national seal public key
a province seals its identities to, and the registration of a province seal key wrapped to it."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session
from common.schemas import Out, Strict
from national_node import sealing
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


class SealKeyOut(Out):
    document = ma.fields.Dict(metadata={"description": "the national seal public key (DSSE envelope, message key)"})
    registered = ma.fields.List(ma.fields.String(), metadata={"description": "the province's registered seal key ids"})


class SealKeyIn(Strict):
    province = ma.fields.String(required=True)
    kid = ma.fields.String(required=True)
    recipient = ma.fields.String(required=True, metadata={"description": "the national seal key id wrapped to"})
    enc = ma.fields.String(required=True, metadata={"description": "base64 of the ephemeral X25519 public key"})
    wrapped = ma.fields.String(required=True, metadata={"description": "base64 of nonce ‖ AES-256-GCM of the key"})


class SealKeyRegisteredOut(Out):
    kid = ma.fields.String()
    registered_at = ma.fields.DateTime()


@bp.route("/provinces/<code>/seal-key")
class SealKey(MethodView):
    @bp.response(200, SealKeyOut)
    def get(self, code: str) -> Any:
        """The current national seal public key, signed by a message key, and the seal key ids the province
        registered (signed request)."""
        session, rt = get_session(), runtime()
        keys = rt.keys()
        doc = sealing.seal_keys_of(keys).document(keys.messages)
        return {"document": json.loads(doc), "registered": [r.kid for r in sealing.registrations(session, code)]}


@bp.route("/provinces/<code>/seal-keys")
class SealKeys(MethodView):
    @bp.arguments(SealKeyIn)
    @bp.response(200, SealKeyRegisteredOut)
    def post(self, body: dict[str, Any], code: str) -> Any:
        """Register a province seal key wrapped to a national seal key (signed request; once per key id)."""
        row = sealing.register(get_session(), sealing.seal_keys_of(runtime().keys()), code, body)
        return {"kid": row.kid, "registered_at": row.registered_at}


BLUEPRINTS = (bp,)
