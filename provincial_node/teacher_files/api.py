"""``/api/v1/teachers`` (files, review, history, self-service accounts), ``/change-requests``,
``/custom-fields``, ``/catalogue``, ``/templates``, ``/imports``, ``/exports``."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.errors import BadRequestError
from common.http import attachment, keep_writes_on_error
from provincial_node.accounts.schemas import AccountOut
from provincial_node.context import current_context
from provincial_node.tasks.api import labelled
from provincial_node.tasks.schemas import TaskOut
from provincial_node.teacher_files import (
    change_requests,
    custom_fields,
    duplicates,
    exporting,
    files,
    importexport,
    review,
    self_service,
    sheets,
)
from provincial_node.teacher_files.schemas import (
    BulkApproveIn,
    BulkApproveOut,
    CatalogueOut,
    ChangeDecisionIn,
    ChangeRequestIn,
    ChangeRequestOut,
    ChangeRequestQuery,
    ChangeRequestsOut,
    CustomFieldIn,
    CustomFieldOut,
    CustomFieldsOut,
    ExportIn,
    FormatQuery,
    HistoryListOut,
    ImportQuery,
    ImportResultOut,
    RetireIn,
    ReviewIn,
    TeacherAccountIn,
    TeacherIn,
    TeacherOut,
    TeacherQuery,
    TeachersOut,
    TeacherSummaryOut,
)
from provincial_node.teacher_files.status import ChangeRequestStatus

teachers_bp = Blueprint("teachers", __name__, url_prefix="/api/v1", description="Teacher files and review")
changes_bp = Blueprint("change_requests", __name__, url_prefix="/api/v1", description="Change requests")
custom_bp = Blueprint("custom_fields", __name__, url_prefix="/api/v1", description="Custom indicators")
files_bp = Blueprint("import_export", __name__, url_prefix="/api/v1", description="Templates, import, export")
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}


def _download(data: bytes, fmt: str, name: str) -> Response:
    return Response(data, mimetype=MIME[fmt], headers={"Content-Disposition": attachment(f"{name}.{fmt}")})


@teachers_bp.route("/teachers")
class Teachers(MethodView):
    @teachers_bp.arguments(TeacherQuery, location="query")
    @teachers_bp.response(200, TeachersOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Files in the caller's scope (teachers: their own)."""
        return {"teachers": files.list_teachers(current_context(), **args)}

    @teachers_bp.arguments(TeacherIn)
    @teachers_bp.response(201, TeacherOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Register a new file at a school (新教师入职); returns the immutable teacher number."""
        ctx = current_context()
        try:
            return files.register_teacher(ctx, body["school_id"], body["basic"])
        except duplicates.DuplicateIdentityError as e:
            ctx.session.rollback()
            duplicates.report_duplicate(ctx, e)
            keep_writes_on_error()  # the bureau above's record of the refused duplicate
            raise


@teachers_bp.route("/teachers/<int:teacher_id>")
class TeacherOne(MethodView):
    @teachers_bp.response(200, TeacherOut)
    def get(self, teacher_id: int) -> Any:
        """One file as the caller's role may see it (audited read): effective data and working copy, or the
        basic view; ID numbers in full or masked."""
        return files.read_file(current_context(), teacher_id)


@teachers_bp.route("/teachers/<int:teacher_id>/groups/<group>")
class TeacherGroup(MethodView):
    @teachers_bp.response(200, TeacherOut)
    def put(self, teacher_id: int, group: str) -> Any:
        """Replace one record group of the working copy (object, or list for multi-record groups)."""
        body = request.get_json(silent=True)
        if body is None:
            raise BadRequestError("the body must be JSON: an object, or a list for multi-record groups")
        return files.update_group(current_context(), teacher_id, group.upper(), body)


@teachers_bp.route("/teachers/<int:teacher_id>/submit")
class TeacherSubmit(MethodView):
    @teachers_bp.response(200, TeacherSummaryOut)
    def post(self, teacher_id: int) -> Any:
        """Completeness check and submission for review."""
        return files.submit(current_context(), teacher_id)


@teachers_bp.route("/teachers/<int:teacher_id>/review")
class TeacherReview(MethodView):
    @teachers_bp.arguments(ReviewIn)
    @teachers_bp.response(200, TeacherSummaryOut)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Approve or reject (with a reason) at the level the file waits for."""
        return review.review(current_context(), teacher_id, body["decision"], body["reason"])


@teachers_bp.route("/reviews/bulk-approve")
class BulkApprove(MethodView):
    @teachers_bp.arguments(BulkApproveIn)
    @teachers_bp.response(200, BulkApproveOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Approve every file of the caller's subtree (or one unit) that waits for the caller's review."""
        return review.bulk_approve(current_context(), body["unit_id"], body["reason"])


@teachers_bp.route("/teachers/<int:teacher_id>/history")
class TeacherHistory(MethodView):
    @teachers_bp.response(200, HistoryListOut)
    def get(self, teacher_id: int) -> Any:
        """Every change of the file: who, when, old → new, status transitions, reasons."""
        return {"history": files.history(current_context(), teacher_id)}


@teachers_bp.route("/teachers/<int:teacher_id>/account")
class TeacherAccount(MethodView):
    @teachers_bp.arguments(TeacherAccountIn)
    @teachers_bp.response(201, AccountOut)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Create the teacher's self-service account (login = ID number; first-login password change)."""
        return self_service.create_teacher_account(current_context(), teacher_id, **body)


@changes_bp.route("/teachers/<int:teacher_id>/change-requests")
class ChangeRequests(MethodView):
    @changes_bp.arguments(ChangeRequestIn)
    @changes_bp.response(201, ChangeRequestOut)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Request a change of effective information (school information administrators)."""
        return change_requests.request_change(current_context(), teacher_id, body["changes"], body["reason"])


@changes_bp.route("/change-requests")
class ChangeRequestList(MethodView):
    @changes_bp.arguments(ChangeRequestQuery, location="query")
    @changes_bp.response(200, ChangeRequestsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Change requests in the caller's scope (default: pending)."""
        status = args["status"] or ChangeRequestStatus.PENDING
        return {"change_requests": change_requests.list_requests(current_context(), status)}


@changes_bp.route("/change-requests/<int:request_id>/decision")
class ChangeRequestDecision(MethodView):
    @changes_bp.arguments(ChangeDecisionIn)
    @changes_bp.response(200, ChangeRequestOut)
    def post(self, body: dict[str, Any], request_id: int) -> Any:
        """Approve or reject (the supervising bureau)."""
        return change_requests.decide(current_context(), request_id, body["decision"], body["reason"])


@custom_bp.route("/custom-fields")
class CustomFields(MethodView):
    @custom_bp.response(200, CustomFieldsOut)
    def get(self) -> Any:
        """Every custom indicator, retired ones included."""
        return {"custom_fields": custom_fields.all_fields(current_context().session)}

    @custom_bp.arguments(CustomFieldIn)
    @custom_bp.response(201, CustomFieldOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Define a custom indicator (province administrators)."""
        return custom_fields.define(current_context(), body)


@custom_bp.route("/custom-fields/<int:field_id>/retire")
class CustomFieldRetire(MethodView):
    @custom_bp.arguments(RetireIn)
    @custom_bp.response(200, CustomFieldOut)
    def post(self, body: dict[str, Any], field_id: int) -> Any:
        """Retire a custom indicator: no longer required or offered; old values stay readable."""
        return custom_fields.retire(current_context(), field_id, body["reason"])


@custom_bp.route("/catalogue")
class CatalogueView(MethodView):
    @custom_bp.response(200, CatalogueOut)
    def get(self) -> Any:
        """The indicator catalogue with the province's custom indicators (fields per group)."""
        return current_context().catalogue


@files_bp.route("/templates/<group>")
class Template(MethodView):
    @files_bp.arguments(FormatQuery, location="query")
    @files_bp.response(200, description="the template file (xlsx or csv)")
    def get(self, args: dict[str, Any], group: str) -> Any:
        """Import template of a record group (?format=xlsx|csv)."""
        fmt = args["format"]
        return _download(sheets.template(current_context(), group, fmt), fmt, group.upper())


@files_bp.route("/imports/<group>")
class Import(MethodView):
    @files_bp.arguments(ImportQuery, location="query")
    @files_bp.response(200, ImportResultOut)
    def post(self, args: dict[str, Any], group: str) -> Any:
        """Import the request body (an xlsx or csv file of one group) for a school; returns counts and row errors."""
        return importexport.import_file(current_context(), args["school_id"], group, request.get_data(), args["format"])


@files_bp.route("/imports/<group>/tasks")
class ImportTask(MethodView):
    @files_bp.arguments(ImportQuery, location="query")
    @files_bp.response(202, TaskOut)
    def post(self, args: dict[str, Any], group: str) -> Any:
        """Start importing the request body (an xlsx or csv file of one group) for a school as a background task;
        poll ``GET /api/v1/tasks/<id>`` for progress and the per-row report, cancel with ``POST …/cancel``."""
        ctx = current_context()
        task = importexport.start_import_task(ctx, args["school_id"], group, request.get_data(), args["format"])
        return labelled(task), 202, {"Location": f"/api/v1/tasks/{task.id}"}


@files_bp.route("/exports")
class Export(MethodView):
    @files_bp.arguments(ExportIn)
    @files_bp.response(200, description="the export file (xlsx or csv)")
    def post(self, body: dict[str, Any]) -> Any:
        """Export the effective files of a unit's subtree (audited, with the reason)."""
        fmt = body["format"]
        data = exporting.export_unit(current_context(), body["unit_id"], body["reason"], fmt, body["groups"])
        return _download(data, fmt, "export")


BLUEPRINTS = (teachers_bp, changes_bp, custom_bp, files_bp)
