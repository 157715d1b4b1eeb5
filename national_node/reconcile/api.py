"""Reconciliation and recovery requests of a province (signed requests, docs/protocol.md §16, §17):

* ``POST /api/v1/provinces/<code>/digest`` ``{root, leaves}`` → ``{match, root, leaves[, nodes]}``;
* ``POST …/digest/node`` ``{node}`` → ``{node, buckets}``; ``POST …/digest/bucket`` ``{bucket, leaves}`` →
  ``{bucket, leaves, differing}``;
* ``GET …/state`` → the province's chain position; ``GET …/accepted?after=N&limit=M`` → the batches accepted
  after N with their receipts.

Bodies are parsed by the protocol's strict JSON rules (integers only, no duplicate keys).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import get_session
from common.schemas import Out
from national_node.inbox import routing
from national_node.reconcile import reconcile
from national_node.runtime import runtime
from sync_protocol.canonical import parse_json
from sync_protocol.errors import MalformedError

bp = Blueprint("reconcile", __name__, url_prefix="/api/v1", description="Reconciliation and recovery")


def _body() -> Any:
    return parse_json(request.get_data())


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, str(default))
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise MalformedError(f"{name} must be a non-negative decimal integer")
    return int(raw)


class DigestOut(Out):
    match = ma.fields.Boolean()
    root = ma.fields.String()
    leaves = ma.fields.Integer()
    nodes = ma.fields.List(ma.fields.String(), metadata={"description": "256 node digests, when the roots differ"})


class NodeOut(Out):
    node = ma.fields.Integer()
    buckets = ma.fields.List(ma.fields.String())


class DifferingOut(Out):
    teacher_number = ma.fields.String()
    province_version = ma.fields.Integer(allow_none=True)
    national_version = ma.fields.Integer(allow_none=True)


class BucketOut(Out):
    bucket = ma.fields.Integer()
    leaves = ma.fields.List(ma.fields.List(ma.fields.Raw()))
    differing = ma.fields.List(ma.fields.Nested(DifferingOut))


class StateOut(Out):
    province = ma.fields.String()
    last_seq = ma.fields.Integer()
    last_batch_hash = ma.fields.String(allow_none=True)
    last_version = ma.fields.Integer()
    inbox_seq = ma.fields.Integer()
    inbox_acked = ma.fields.Integer()


class AcceptedBatchOut(Out):
    seq = ma.fields.Integer()
    batch_hash = ma.fields.String()
    file = ma.fields.String(metadata={"description": "the batch file as accepted"})
    receipt = ma.fields.Dict()


class AcceptedOut(Out):
    batches = ma.fields.List(ma.fields.Nested(AcceptedBatchOut))


@bp.route("/provinces/<code>/digest")
class Digest(MethodView):
    @bp.response(200, DigestOut)
    def post(self, code: str) -> Any:
        """Compare the province's core-view digest root with the store's; the comparison is recorded."""
        return reconcile.compare_root(get_session(), code, _body())


@bp.route("/provinces/<code>/digest/node")
class DigestNode(MethodView):
    @bp.response(200, NodeOut)
    def post(self, code: str) -> Any:
        """The 256 bucket digests under one node of the store's tree for the province."""
        return reconcile.node_children(get_session(), code, _body())


@bp.route("/provinces/<code>/digest/bucket")
class DigestBucket(MethodView):
    @bp.response(200, BucketOut)
    def post(self, code: str) -> Any:
        """The province's leaves of one bucket: the store's leaves and the teacher numbers that differ (recorded)."""
        return reconcile.compare_bucket(get_session(), code, _body())


@bp.route("/provinces/<code>/state")
class State(MethodView):
    @bp.response(200, StateOut)
    def get(self, code: str) -> Any:
        """The province's chain position: last sequence, batch hash and version; inbox cursor."""
        routing.sequence(get_session(), runtime().keys(), code)  # routed messages count as sent
        return reconcile.state(get_session(), code)


@bp.route("/provinces/<code>/accepted")
class Accepted(MethodView):
    @bp.response(200, AcceptedOut)
    def get(self, code: str) -> Any:
        """The batches accepted after ?after=N (at most ?limit=M, 1–32), each with its receipt."""
        return {"batches": reconcile.accepted_after(get_session(), code, _int_arg("after", 0), _int_arg("limit", 8))}


BLUEPRINTS = (bp,)
