"""``/api/v1/transfers``, ``/rotations``: transfers (调动) and exchange rotation (交流轮岗), inside the
province and across provinces."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from common.http import keep_writes_on_error
from provincial_node.context import current_context
from provincial_node.teacher_files import duplicates
from provincial_node.transfers import local
from provincial_node.transfers.schemas import (
    RotationIn,
    TransferDecisionIn,
    TransferIn,
    TransferOut,
    TransferQuery,
    TransfersOut,
    WithdrawIn,
)

bp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Transfers and exchange rotation")


@bp.route("/transfers")
class Transfers(MethodView):
    @bp.arguments(TransferQuery, location="query")
    @bp.response(200, TransfersOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Transfers and rotations touching the caller's subtree (either end)."""
        return {"transfers": local.in_scope(current_context(), args["status"])}

    @bp.arguments(TransferIn)
    @bp.response(201, TransferOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Start a transfer (调动): the receiving school asks for a teacher of this or another province."""
        ctx = current_context()
        try:
            return local.start_transfer(
                ctx,
                body["teacher_number"],
                body["doc_type"],
                body["doc_number"],
                body["to_school_id"],
                body["reason"],
                from_province=body["from_province"],
            )
        except duplicates.DuplicateIdentityError as e:
            ctx.session.rollback()
            duplicates.report_duplicate(ctx, e)
            keep_writes_on_error()  # the bureau above's record of the refused duplicate
            raise


@bp.route("/transfers/pending")
class TransfersPending(MethodView):
    @bp.response(200, TransfersOut)
    def get(self) -> Any:
        """What waits for the caller's unit (待办)."""
        return {"transfers": local.pending(current_context())}


@bp.route("/rotations")
class Rotations(MethodView):
    @bp.arguments(RotationIn)
    @bp.response(201, TransferOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Start an exchange rotation (交流轮岗), with or without a change of personnel relationship."""
        return local.start_rotation(current_context(), body.pop("teacher_id"), **body)


@bp.route("/transfers/<int:transfer_id>/decision")
class TransferDecision(MethodView):
    @bp.arguments(TransferDecisionIn)
    @bp.response(200, TransferOut)
    def post(self, body: dict[str, Any], transfer_id: int) -> Any:
        """Approve or reject (with a reason) the step the request waits for."""
        return local.decide(current_context(), transfer_id, body["decision"], body["reason"])


@bp.route("/transfers/<int:transfer_id>/withdraw")
class TransferWithdraw(MethodView):
    @bp.arguments(WithdrawIn)
    @bp.response(200, TransferOut)
    def post(self, body: dict[str, Any], transfer_id: int) -> Any:
        """Withdraw a request (the starting unit, before the last step)."""
        return local.withdraw(current_context(), transfer_id, body["reason"])


@bp.route("/transfers/<int:transfer_id>/end-rotation")
class RotationEnd(MethodView):
    @bp.response(200, TransferOut)
    def post(self, transfer_id: int) -> Any:
        """The rotating teacher returns: 人员状态 back to 在本单位任职."""
        return local.end_rotation(current_context(), transfer_id)


@bp.route("/teachers/<int:teacher_id>/transfers")
class TeacherTransfers(MethodView):
    @bp.response(200, TransfersOut)
    def get(self, teacher_id: int) -> Any:
        """Every transfer and rotation of one teacher, with all steps."""
        return {"transfers": local.for_teacher(current_context(), teacher_id)}


BLUEPRINTS = (bp,)
