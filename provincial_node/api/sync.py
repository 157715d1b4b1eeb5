"""``/api/v1/sync/*`` and ``/api/v1/outbox``: the province operator's view of tmis-sync/1 (it sits in the
shell, above the jobs, because it starts a round)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import end_request_transaction
from common.schemas import Out
from provincial_node.context import current_context, runtime
from provincial_node.jobs import make_sync_client
from provincial_node.rules import Operation, authorize
from provincial_node.sync import outbox
from provincial_node.sync import status as sync_status
from provincial_node.sync.models import RoundTrigger

bp = Blueprint("sync", __name__, url_prefix="/api/v1", description="Sync rounds with the national node")


class SyncStatusOut(Out):
    outbox_pending = ma.fields.Integer()
    transfer_messages_pending = ma.fields.Integer()
    inbox_unprocessed = ma.fields.Integer()
    batches_unsent = ma.fields.Integer()
    last_accepted_seq = ma.fields.Integer()
    parked_records = ma.fields.Integer()
    trust_version = ma.fields.Integer(allow_none=True)
    inbox_received = ma.fields.Integer()


class RoundOut(Out):
    id = ma.fields.Integer()
    trigger = ma.fields.String()
    status = ma.fields.String()
    started_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
    batches = ma.fields.Integer()
    records = ma.fields.Integer()
    bytes_sent = ma.fields.Integer()
    messages = ma.fields.Integer()
    timings = ma.fields.Dict(metadata={"description": "seconds per phase"})
    errors = ma.fields.List(ma.fields.Dict())


class RoundsOut(Out):
    rounds = ma.fields.List(ma.fields.Nested(RoundOut))


class RunOut(Out):
    id = ma.fields.Integer()
    status = ma.fields.String()
    batches = ma.fields.Integer()
    records = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Dict())


class OutboxEntryOut(Out):
    version = ma.fields.Integer()
    teacher_number = ma.fields.String()
    op = ma.fields.String()
    record = ma.fields.Dict()


class OutboxOut(Out):
    entries = ma.fields.List(ma.fields.Nested(OutboxEntryOut))


def _province_operator(op: Operation = Operation.SYNC_OPERATE) -> None:
    authorize(current_context(), op)


@bp.route("/sync/status")
class SyncStatus(MethodView):
    @bp.response(200, SyncStatusOut)
    def get(self) -> Any:
        """Outbox backlog, unsent batches, last accepted batch, parked records, trust version."""
        _province_operator()
        return sync_status.status(current_context().session)


@bp.route("/sync/rounds")
class SyncRounds(MethodView):
    @bp.response(200, RoundsOut)
    def get(self) -> Any:
        """The last sync rounds with per-phase timings and errors."""
        _province_operator()
        return {"rounds": sync_status.last_rounds(current_context().session)}


@bp.route("/sync/run")
class SyncRun(MethodView):
    @bp.response(200, RunOut)
    def post(self) -> Any:
        """Run a sync round now (province administrators); answers its summary."""
        _province_operator()
        end_request_transaction()  # the round writes in its own transactions
        return make_sync_client(runtime()).run_round(RoundTrigger.API)


@bp.route("/outbox")
class Outbox(MethodView):
    @bp.response(200, OutboxOut)
    def get(self) -> Any:
        """Outbox entries not yet batched (province administrators and operators)."""
        _province_operator(Operation.OUTBOX_READ)
        return {"entries": outbox.pending(current_context().session)}


BLUEPRINTS = (bp,)
