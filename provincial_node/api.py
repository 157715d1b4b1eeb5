"""The provincial node's JSON API (``/api/v1``), documented by OpenAPI at ``/api/openapi.json``.

Every endpoint except ``POST /api/v1/auth/login`` needs ``Authorization: Bearer <token>``. A user who must
change the initial password may only call ``/auth/password`` and ``/me`` until they do. Views are thin:
they resolve the actor, call a service with the request's session, and serialise the result; the request
owns the transaction (committed on success, rolled back on any error). Out-of-scope objects answer 404.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.errors import AuthError, BadRequestError, PermissionDeniedError
from common.http import get_session
from provincial_node.models import Account, ChangeRequest, CustomField, Teacher, TeacherHistory, Unit
from provincial_node.services import accounts, audit, change_requests, custom_fields, files, outbox, units
from provincial_node.services.access import Actor, unit_in_scope

PUBLIC_ENDPOINTS = {"auth.Login"}
ALLOWED_BEFORE_PASSWORD_CHANGE = {"auth.Password", "auth.Me", "auth.Logout"}


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class LoginIn(Strict):
    username = ma.fields.String(required=True)
    password = ma.fields.String(required=True, load_only=True)


class PasswordIn(Strict):
    old_password = ma.fields.String(required=True)
    new_password = ma.fields.String(required=True)


class UnitIn(Strict):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    parent_code = ma.fields.String(load_default=None)
    division_code = ma.fields.String(load_default=None)
    school_type = ma.fields.String(load_default=None)
    urban_rural_type = ma.fields.String(load_default=None)
    sponsor_type = ma.fields.String(load_default=None)
    supervisor_code = ma.fields.String(load_default=None)


class ReviewChainIn(Strict):
    levels = ma.fields.String(required=True, metadata={"description": "county | county,city"})


class AccountIn(Strict):
    username = ma.fields.String(required=True)
    real_name = ma.fields.String(required=True)
    unit_id = ma.fields.Integer(required=True)
    role = ma.fields.String(required=True)
    password = ma.fields.String(required=True, metadata={"description": "initial password, changed at first login"})
    phone = ma.fields.String(load_default=None)


class AccountActionIn(Strict):
    action = ma.fields.String(required=True, metadata={"description": "unlock | reset_password | disable | restore"})
    reason = ma.fields.String(required=True)
    new_password = ma.fields.String(load_default=None)


class TeacherIn(Strict):
    school_id = ma.fields.Integer(required=True)
    basic = ma.fields.Dict(required=True, metadata={"description": "基本信息 fields; XM, SFZJLXM, SFZJH required"})


class TeacherAccountIn(Strict):
    name = ma.fields.String(required=True)
    gender = ma.fields.String(required=True)
    birth_date = ma.fields.String(required=True)
    id_number = ma.fields.String(required=True)
    initial_password = ma.fields.String(required=True)


class ReviewIn(Strict):
    decision = ma.fields.String(required=True, metadata={"description": "approve | reject"})
    reason = ma.fields.String(load_default=None)


class BulkApproveIn(Strict):
    unit_id = ma.fields.Integer(load_default=None)
    reason = ma.fields.String(load_default=None)


class ChangeIn(Strict):
    group = ma.fields.String(required=True)
    index = ma.fields.Integer(load_default=None)
    field = ma.fields.String(required=True)
    new = ma.fields.Raw(required=True, allow_none=True)


class ChangeRequestIn(Strict):
    changes = ma.fields.List(ma.fields.Nested(ChangeIn), required=True)
    reason = ma.fields.String(required=True)


class DecisionIn(Strict):
    decision = ma.fields.String(required=True)
    reason = ma.fields.String(load_default="")


class CustomFieldIn(Strict):
    group_code = ma.fields.String(required=True)
    code = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    label_en = ma.fields.String(load_default="")
    type = ma.fields.String(required=True)
    code_table = ma.fields.String(load_default=None)
    codes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), load_default=None)
    required = ma.fields.Boolean(load_default=False)
    filled_by = ma.fields.String(load_default="school")
    stages = ma.fields.List(ma.fields.String(), load_default=None)
    max_length = ma.fields.Integer(load_default=None)


class ReasonIn(Strict):
    reason = ma.fields.String(required=True)


class ListArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    status = ma.fields.String(load_default=None)
    unit_id = ma.fields.Integer(load_default=None)
    action = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(0))


# -------------------------------------------------------------------------------------------- serialisers


def unit_json(u: Unit) -> dict[str, Any]:
    return {
        "id": u.id,
        "code": u.code,
        "name": u.name,
        "level": u.level,
        "parent_id": u.parent_id,
        "division_code": u.division_code,
        "school_type": u.school_type,
        "urban_rural_type": u.urban_rural_type,
        "sponsor_type": u.sponsor_type,
        "supervisor_id": u.supervisor_id,
    }


def account_json(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "username": a.username,
        "real_name": a.real_name,
        "unit_id": a.unit_id,
        "role": a.role,
        "teacher_id": a.teacher_id,
        "disabled": a.disabled,
        "must_change_password": a.must_change_password,
        "locked_until": a.locked_until.isoformat() if a.locked_until else None,
    }


def teacher_json(t: Teacher, full: bool = True) -> dict[str, Any]:
    out = {
        "id": t.id,
        "teacher_number": t.teacher_number,
        "name": t.name,
        "unit_id": t.unit_id,
        "status": t.status,
        "file_version": t.file_version,
        "rejection_reason": t.rejection_reason,
    }
    if full:
        out.update(data=t.data, draft=t.draft)
    return out


def history_json(h: TeacherHistory) -> dict[str, Any]:
    return {
        "at": h.at.isoformat(),
        "actor_id": h.actor_id,
        "action": h.action,
        "status_from": h.status_from,
        "status_to": h.status_to,
        "reason": h.reason,
        "changes": h.changes,
    }


def change_request_json(c: ChangeRequest) -> dict[str, Any]:
    return {
        "id": c.id,
        "teacher_id": c.teacher_id,
        "status": c.status,
        "reason": c.reason,
        "changes": c.changes,
        "requested_by": c.requested_by,
        "requested_at": c.requested_at.isoformat(),
        "decided_by": c.decided_by,
        "decision_reason": c.decision_reason,
    }


def custom_field_json(f: CustomField) -> dict[str, Any]:
    return {
        "id": f.id,
        "group_code": f.group_code,
        "code": f.code,
        "label": f.label,
        "type": f.type,
        "code_table": f.code_table,
        "codes": f.codes,
        "required": f.required,
        "filled_by": f.filled_by,
        "stages": f.stages,
        "retired": f.retired_at is not None,
    }


# ------------------------------------------------------------------------------------------------ helpers


def actor() -> Actor:
    return g.actor


def catalogue() -> Any:
    return current_app.extensions["tmis_catalogue"]


def province_code() -> str:
    return current_app.extensions["tmis_config"].province_code


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def authenticate_request() -> None:
    if not request.path.startswith("/api/v1/") or request.endpoint in PUBLIC_ENDPOINTS:
        return
    token = _bearer()
    if not token:
        raise AuthError("missing bearer token (POST /api/v1/auth/login)")
    session = get_session()
    account = accounts.authenticate(session, token)
    g.account, g.actor = account, Actor.of(session, account)
    if account.must_change_password and request.endpoint not in ALLOWED_BEFORE_PASSWORD_CHANGE:
        raise PermissionDeniedError(
            "change the initial password first (POST /api/v1/auth/password)",
            details={"reason": "password_change_required"},
        )


# ------------------------------------------------------------------------------------------------ blueprints

auth_bp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Login, tokens, passwords")
units_bp = Blueprint("units", __name__, url_prefix="/api/v1", description="Unit tree and review chains")
accounts_bp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts (five-level use)")
teachers_bp = Blueprint("teachers", __name__, url_prefix="/api/v1", description="Teacher files and review")
changes_bp = Blueprint("change_requests", __name__, url_prefix="/api/v1", description="Change requests")
custom_bp = Blueprint("custom_fields", __name__, url_prefix="/api/v1", description="Custom indicators")
ops_bp = Blueprint("operations", __name__, url_prefix="/api/v1", description="Audit trail, outbox, catalogue")


@auth_bp.route("/auth/login")
class Login(MethodView):
    @auth_bp.arguments(LoginIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange username and password for a bearer token (lock-out after 5 failures)."""
        session = get_session()
        try:
            token, account = accounts.login(session, body["username"], body["password"])
        except AuthError:
            session.commit()  # keep the failure count even though the request fails
            raise
        return {
            "token": token,
            "token_type": "Bearer",
            "must_change_password": account.must_change_password,
            "account": account_json(account),
        }


@auth_bp.route("/auth/logout")
class Logout(MethodView):
    def post(self) -> Any:
        """Revoke the token used for this request."""
        accounts.logout(get_session(), _bearer() or "")
        return {"revoked": True}


@auth_bp.route("/auth/password")
class Password(MethodView):
    @auth_bp.arguments(PasswordIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Change the password (required at first login)."""
        accounts.change_password(get_session(), g.account, body["old_password"], body["new_password"])
        return {"changed": True}


@auth_bp.route("/me")
class Me(MethodView):
    def get(self) -> Any:
        """The calling account and its unit."""
        return {"account": account_json(g.account), "unit": unit_json(get_session().get(Unit, g.account.unit_id))}


@units_bp.route("/units")
class Units(MethodView):
    def get(self) -> Any:
        """Units in the caller's subtree."""
        from sqlalchemy import select

        rows = get_session().scalars(
            select(Unit).where(Unit.path.startswith(actor().unit_path, autoescape=True)).order_by(Unit.path)
        )
        return {"units": [unit_json(u) for u in rows]}

    @units_bp.arguments(UnitIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Create one unit below the caller's unit (system administrators)."""
        actor().require("sysadmin")
        session = get_session()
        parent = units.get_unit_by_code(session, body["parent_code"]) if body.get("parent_code") else None
        if parent is None or not actor().contains(parent):
            raise PermissionDeniedError("units are created inside the caller's subtree")
        return unit_json(units.create_unit(session, catalogue(), body)), 201


@units_bp.route("/units/import")
class UnitsImport(MethodView):
    def post(self) -> Any:
        """Import a unit tree from CSV (body: text/csv, UTF-8); all rows valid or nothing imported."""
        actor().require("sysadmin")
        actor().require_level("province")
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("the CSV must be UTF-8") from None
        result = units.import_units_csv(get_session(), catalogue(), text)
        audit.record(get_session(), actor(), "units.import", "unit", "*", actor().unit_path, **result)
        return result


@units_bp.route("/review-chains/<stage>")
class ReviewChains(MethodView):
    @units_bp.arguments(ReviewChainIn)
    def put(self, body: dict[str, Any], stage: str) -> Any:
        """Set the review levels after the school for a school stage or a 办学类型 code (province administrators)."""
        actor().require("sysadmin", "infoadmin")
        actor().require_level("province")
        units.set_review_chain(get_session(), catalogue(), stage, body["levels"])
        return {"stage": stage, "levels": body["levels"]}


@accounts_bp.route("/accounts")
class Accounts(MethodView):
    def get(self) -> Any:
        """Accounts of the caller's subtree (administrators)."""
        from sqlalchemy import select

        actor().require("sysadmin")
        rows = get_session().scalars(
            select(Account)
            .join(Unit, Unit.id == Account.unit_id)
            .where(Unit.path.startswith(actor().unit_path, autoescape=True))
            .order_by(Account.id)
        )
        return {"accounts": [account_json(a) for a in rows]}

    @accounts_bp.arguments(AccountIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an account (the unit's system administrator, or the one above for administrators)."""
        session = get_session()
        unit = unit_in_scope(session, actor(), body["unit_id"])
        account = accounts.create_account(
            session,
            actor(),
            username=body["username"],
            real_name=body["real_name"],
            unit=unit,
            role=body["role"],
            password=body["password"],
            phone=body["phone"],
        )
        return account_json(account), 201


@accounts_bp.route("/accounts/<int:account_id>/actions")
class AccountActions(MethodView):
    @accounts_bp.arguments(AccountActionIn)
    def post(self, body: dict[str, Any], account_id: int) -> Any:
        """unlock | reset_password | disable | restore (with a reason; audited)."""
        account = accounts.set_account_state(
            get_session(), actor(), account_id, body["action"], body["reason"], body["new_password"]
        )
        return account_json(account)


@teachers_bp.route("/teachers")
class Teachers(MethodView):
    @teachers_bp.arguments(ListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        """Files in the caller's scope (teachers: their own)."""
        rows = files.list_teachers(
            get_session(),
            actor(),
            status=args["status"],
            unit_id=args["unit_id"],
            limit=args["limit"],
            offset=args["offset"],
        )
        return {"teachers": [teacher_json(t, full=False) for t in rows]}

    @teachers_bp.arguments(TeacherIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Register a new file at a school (新教师入职); returns the immutable teacher number."""
        t = files.register_teacher(
            get_session(), actor(), catalogue(), province_code(), body["school_id"], body["basic"]
        )
        return teacher_json(t), 201


@teachers_bp.route("/teachers/<int:teacher_id>")
class TeacherOne(MethodView):
    def get(self, teacher_id: int) -> Any:
        """One file: effective data and working copy."""
        return teacher_json(files.get_teacher(get_session(), actor(), teacher_id))


@teachers_bp.route("/teachers/<int:teacher_id>/groups/<group>")
class TeacherGroup(MethodView):
    def put(self, teacher_id: int, group: str) -> Any:
        """Replace one record group of the working copy (object, or list for multi-record groups)."""
        body = request.get_json(silent=True)
        if body is None:
            raise BadRequestError("the body must be JSON: an object, or a list for multi-record groups")
        t = files.update_group(get_session(), actor(), catalogue(), teacher_id, group.upper(), body)
        return teacher_json(t)


@teachers_bp.route("/teachers/<int:teacher_id>/submit")
class TeacherSubmit(MethodView):
    def post(self, teacher_id: int) -> Any:
        """Completeness check and submission for review."""
        return teacher_json(files.submit(get_session(), actor(), catalogue(), teacher_id), full=False)


@teachers_bp.route("/teachers/<int:teacher_id>/review")
class TeacherReview(MethodView):
    @teachers_bp.arguments(ReviewIn)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Approve or reject (with a reason) at the level the file waits for."""
        t = files.review(
            get_session(), actor(), catalogue(), province_code(), teacher_id, body["decision"], body["reason"]
        )
        return teacher_json(t, full=False)


@teachers_bp.route("/reviews/bulk-approve")
class BulkApprove(MethodView):
    @teachers_bp.arguments(BulkApproveIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Approve every file of the caller's subtree (or one unit) that waits for the caller's review."""
        return files.bulk_approve(get_session(), actor(), catalogue(), province_code(), body["unit_id"], body["reason"])


@teachers_bp.route("/teachers/<int:teacher_id>/history")
class TeacherHistoryView(MethodView):
    def get(self, teacher_id: int) -> Any:
        """Every change of the file: who, when, old → new, status transitions, reasons."""
        return {"history": [history_json(h) for h in files.history(get_session(), actor(), teacher_id)]}


@teachers_bp.route("/teachers/<int:teacher_id>/account")
class TeacherAccount(MethodView):
    @teachers_bp.arguments(TeacherAccountIn)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Create the teacher's self-service account (login = ID number; first-login password change)."""
        session = get_session()
        t = files.get_teacher(session, actor(), teacher_id)
        acc = accounts.create_teacher_account(
            session,
            actor(),
            t,
            name=body["name"],
            gender=body["gender"],
            birth_date=body["birth_date"],
            id_number=body["id_number"],
            initial_password=body["initial_password"],
        )
        return account_json(acc), 201


@changes_bp.route("/teachers/<int:teacher_id>/change-requests")
class ChangeRequests(MethodView):
    @changes_bp.arguments(ChangeRequestIn)
    def post(self, body: dict[str, Any], teacher_id: int) -> Any:
        """Request a change of effective information (school information administrators)."""
        cr = change_requests.request_change(
            get_session(), actor(), catalogue(), teacher_id, body["changes"], body["reason"]
        )
        return change_request_json(cr), 201


@changes_bp.route("/change-requests")
class ChangeRequestList(MethodView):
    @changes_bp.arguments(ListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        """Change requests in the caller's scope (default: pending)."""
        rows = change_requests.list_requests(get_session(), actor(), args["status"] or "pending")
        return {"change_requests": [change_request_json(c) for c in rows]}


@changes_bp.route("/change-requests/<int:request_id>/decision")
class ChangeRequestDecision(MethodView):
    @changes_bp.arguments(DecisionIn)
    def post(self, body: dict[str, Any], request_id: int) -> Any:
        """Approve or reject (the supervising bureau)."""
        cr = change_requests.decide(
            get_session(), actor(), catalogue(), province_code(), request_id, body["decision"], body["reason"]
        )
        return change_request_json(cr)


@custom_bp.route("/custom-fields")
class CustomFields(MethodView):
    def get(self) -> Any:
        """Every custom indicator, retired ones included."""
        from sqlalchemy import select

        return {
            "custom_fields": [
                custom_field_json(f) for f in get_session().scalars(select(CustomField).order_by(CustomField.id))
            ]
        }

    @custom_bp.arguments(CustomFieldIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Define a custom indicator (province administrators)."""
        return custom_field_json(custom_fields.define(get_session(), actor(), catalogue(), body)), 201


@custom_bp.route("/custom-fields/<int:field_id>/retire")
class CustomFieldRetire(MethodView):
    @custom_bp.arguments(ReasonIn)
    def post(self, body: dict[str, Any], field_id: int) -> Any:
        """Retire a custom indicator: no longer required or offered; old values stay readable."""
        return custom_field_json(custom_fields.retire(get_session(), actor(), field_id, body["reason"]))


@ops_bp.route("/audit-events")
class AuditEvents(MethodView):
    @ops_bp.arguments(ListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        """The audit trail of the caller's unit and the units below."""
        rows = audit.query(get_session(), actor(), action=args["action"], limit=args["limit"], offset=args["offset"])
        return {
            "events": [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor_id": e.actor_id,
                    "action": e.action,
                    "target_type": e.target_type,
                    "target_id": e.target_id,
                    "reason": e.reason,
                    "details": e.details,
                }
                for e in rows
            ]
        }


@ops_bp.route("/outbox")
class Outbox(MethodView):
    def get(self) -> Any:
        """Outbox entries not yet batched (province administrators and operators)."""
        actor().require("sysadmin", "infoadmin")
        actor().require_level("province")
        return {
            "entries": [
                {"version": e.version, "teacher_number": e.teacher_number, "op": e.op, "record": e.record}
                for e in outbox.pending(get_session())
            ]
        }


@ops_bp.route("/catalogue")
class CatalogueView(MethodView):
    def get(self) -> Any:
        """The indicator catalogue with the province's custom indicators (fields per group)."""
        full = custom_fields.catalogue_for(get_session(), catalogue())
        return {
            "version": full.version,
            "custom_version": full.custom_version,
            "groups": [
                {
                    "code": g.code,
                    "label": g.label,
                    "multiple": g.multiple,
                    "stages": sorted(g.stages),
                    "fields": [
                        {
                            "code": f.code,
                            "label": f.label,
                            "type": f.type,
                            "code_table": f.code_table,
                            "required": f.required,
                            "filled_by": f.filled_by,
                            "core": f.core,
                            "custom": f.custom,
                            "retired": f.retired,
                        }
                        for f in g.fields
                    ],
                }
                for g in full.ordered_groups
            ],
        }


class ImportArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    school_id = ma.fields.Integer(required=True)
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(["xlsx", "csv"]))


class ExportIn(Strict):
    unit_id = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True)
    groups = ma.fields.List(ma.fields.String(), load_default=None)
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(["xlsx", "csv"]))


files_bp = Blueprint("import_export", __name__, url_prefix="/api/v1", description="Templates, import, export")
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}


@files_bp.route("/templates/<group>")
class Template(MethodView):
    def get(self, group: str) -> Any:
        """Import template of a record group (?format=xlsx|csv)."""
        from flask import Response

        from provincial_node.services import importexport

        fmt = request.args.get("format", "xlsx")
        data = importexport.template(get_session(), catalogue(), group, fmt)
        return Response(
            data,
            mimetype=MIME.get(fmt, "application/octet-stream"),
            headers={"Content-Disposition": f'attachment; filename="{group.upper()}.{fmt}"'},
        )


@files_bp.route("/imports/<group>")
class Import(MethodView):
    @files_bp.arguments(ImportArgs, location="query")
    def post(self, args: dict[str, Any], group: str) -> Any:
        """Import the request body (an xlsx or csv file of one group) for a school; returns counts and row errors."""
        from provincial_node.services import importexport

        return importexport.import_file(
            get_session(),
            actor(),
            catalogue(),
            province_code(),
            args["school_id"],
            group,
            request.get_data(),
            args["format"],
        )


@files_bp.route("/exports")
class Export(MethodView):
    @files_bp.arguments(ExportIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Export the effective files of a unit's subtree (audited, with the reason)."""
        from flask import Response

        from provincial_node.services import importexport

        data = importexport.export_unit(
            get_session(), actor(), catalogue(), body["unit_id"], body["reason"], body["format"], body["groups"]
        )
        return Response(
            data,
            mimetype=MIME[body["format"]],
            headers={"Content-Disposition": f'attachment; filename="export.{body["format"]}"'},
        )


sync_bp = Blueprint("sync", __name__, url_prefix="/api/v1", description="Sync rounds with the national node")


@sync_bp.route("/sync/status")
class SyncStatus(MethodView):
    def get(self) -> Any:
        """Outbox backlog, unsent batches, last accepted batch, parked records, trust version."""
        from provincial_node import sync

        actor().require_level("province")
        return sync.status(get_session())


@sync_bp.route("/sync/rounds")
class SyncRounds(MethodView):
    def get(self) -> Any:
        """The last sync rounds with per-phase timings and errors."""
        from provincial_node import sync

        actor().require_level("province")
        return {
            "rounds": [
                {
                    "id": r.id,
                    "trigger": r.trigger,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                    "batches": r.batches,
                    "records": r.records,
                    "bytes_sent": r.bytes_sent,
                    "messages": r.messages,
                    "timings": r.timings,
                    "errors": r.errors,
                }
                for r in sync.last_rounds(get_session())
            ]
        }


@sync_bp.route("/sync/run")
class SyncRun(MethodView):
    def post(self) -> Any:
        """Run a sync round now (province administrators); answers its summary."""
        from provincial_node.jobs import make_sync_client

        actor().require("sysadmin", "infoadmin")
        actor().require_level("province")
        rnd = make_sync_client(current_app).run_round("api")
        return {
            "id": rnd.id,
            "status": rnd.status,
            "batches": rnd.batches,
            "records": rnd.records,
            "errors": rnd.errors,
        }


class TransferIn(Strict):
    teacher_number = ma.fields.String(required=True)
    doc_type = ma.fields.String(required=True)
    doc_number = ma.fields.String(required=True)
    to_school_id = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True)
    from_province = ma.fields.String(
        load_default=None,
        metadata={
            "description": "the province holding the teacher (default: this one if it holds the number, "
            "else the teacher number's prefix); another province's teacher is requested via the national node"
        },
    )


class RotationIn(Strict):
    teacher_id = ma.fields.Integer(required=True)
    with_transfer = ma.fields.Boolean(required=True, metadata={"description": "是否调动人事关系"})
    rotation_type = ma.fields.String(required=True, metadata={"description": "交流轮岗类型 (JLLGLX)"})
    start_month = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    end_month = ma.fields.String(load_default=None, validate=ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    reason = ma.fields.String(required=True)
    to_school_id = ma.fields.Integer(load_default=None)
    to_unit_name = ma.fields.String(load_default=None)
    to_province = ma.fields.String(load_default=None, metadata={"description": "跨省: the receiving province"})
    to_school_code = ma.fields.String(
        load_default=None, metadata={"description": "跨省: the receiving school's 学校标识码 (with to_unit_name)"}
    )


transfers_bp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Transfers and exchange rotation")


@transfers_bp.route("/transfers")
class Transfers(MethodView):
    @transfers_bp.arguments(ListArgs, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        """Transfers and rotations touching the caller's subtree (either end)."""
        from provincial_node.services import transfers

        return {"transfers": [transfers.to_json(t) for t in transfers.in_scope(get_session(), actor(), args["status"])]}

    @transfers_bp.arguments(TransferIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Start a transfer (调动): the receiving school asks for a teacher of this or another province."""
        from provincial_node.services import transfers

        t = transfers.start_transfer(
            get_session(),
            actor(),
            body["teacher_number"],
            body["doc_type"],
            body["doc_number"],
            body["to_school_id"],
            body["reason"],
            province=province_code(),
            from_province=body["from_province"],
            expiry=transfers.expiry_of(current_app.extensions["tmis_config"]),
        )
        return transfers.to_json(t), 201


@transfers_bp.route("/transfers/pending")
class TransfersPending(MethodView):
    def get(self) -> Any:
        """What waits for the caller's unit (待办)."""
        from provincial_node.services import transfers

        return {"transfers": [transfers.to_json(t) for t in transfers.pending(get_session(), actor())]}


@transfers_bp.route("/rotations")
class Rotations(MethodView):
    @transfers_bp.arguments(RotationIn)
    def post(self, body: dict[str, Any]) -> Any:
        """Start an exchange rotation (交流轮岗), with or without a change of personnel relationship."""
        from provincial_node.services import transfers

        t = transfers.start_rotation(
            get_session(),
            actor(),
            catalogue(),
            body["teacher_id"],
            with_transfer=body["with_transfer"],
            rotation_type=body["rotation_type"],
            start_month=body["start_month"],
            end_month=body["end_month"],
            reason=body["reason"],
            to_school_id=body["to_school_id"],
            to_unit_name=body["to_unit_name"],
            to_province=body["to_province"],
            to_school_code=body["to_school_code"],
            province=province_code(),
            expiry=transfers.expiry_of(current_app.extensions["tmis_config"]),
        )
        return transfers.to_json(t), 201


@transfers_bp.route("/transfers/<int:transfer_id>/decision")
class TransferDecision(MethodView):
    @transfers_bp.arguments(ReviewIn)
    def post(self, body: dict[str, Any], transfer_id: int) -> Any:
        """Approve or reject (with a reason) the step the request waits for."""
        from provincial_node.services import transfers

        t = transfers.decide(
            get_session(), actor(), catalogue(), province_code(), transfer_id, body["decision"], body["reason"]
        )
        return transfers.to_json(t)


@transfers_bp.route("/transfers/<int:transfer_id>/withdraw")
class TransferWithdraw(MethodView):
    @transfers_bp.arguments(ReasonIn)
    def post(self, body: dict[str, Any], transfer_id: int) -> Any:
        """Withdraw a request (the starting unit, before the last step)."""
        from provincial_node.services import transfers

        return transfers.to_json(transfers.withdraw(get_session(), actor(), transfer_id, body["reason"]))


@transfers_bp.route("/transfers/<int:transfer_id>/end-rotation")
class RotationEnd(MethodView):
    def post(self, transfer_id: int) -> Any:
        """The rotating teacher returns: 人员状态 back to 在本单位任职."""
        from provincial_node.services import transfers

        return transfers.to_json(
            transfers.end_rotation(get_session(), actor(), catalogue(), province_code(), transfer_id)
        )


@transfers_bp.route("/teachers/<int:teacher_id>/transfers")
class TeacherTransfers(MethodView):
    def get(self, teacher_id: int) -> Any:
        """Every transfer and rotation of one teacher, with all steps."""
        from provincial_node.services import transfers

        return {"transfers": [transfers.to_json(t) for t in transfers.for_teacher(get_session(), actor(), teacher_id)]}


def register(app: Flask, api: Any) -> None:
    app.before_request(authenticate_request)
    for bp in (
        auth_bp,
        units_bp,
        accounts_bp,
        teachers_bp,
        changes_bp,
        custom_bp,
        ops_bp,
        files_bp,
        sync_bp,
        transfers_bp,
    ):
        api.register_blueprint(bp)
