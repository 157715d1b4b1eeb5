"""``/api/v1/audit-events`` (操作日志) and ``/api/v1/login-events`` (登录日志): filtered keyset pages of the
caller's subtree, newest first (:mod:`provincial_node.audit_trail.search`)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from provincial_node.audit_trail import search
from provincial_node.audit_trail.schemas import AuditEventsOut, AuditQuery, LoginEventsOut, LoginQuery
from provincial_node.context import current_context

bp = Blueprint(
    "audit_trail", __name__, url_prefix="/api/v1", description="Audit trail (操作日志) and login log (登录日志)"
)


@bp.route("/audit-events")
class AuditEvents(MethodView):
    @bp.arguments(AuditQuery, location="query")
    @bp.response(200, AuditEventsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """The audit trail of the caller's unit and the units below, newest first; ``before`` pages back."""
        ctx = current_context()
        before, limit = args.pop("before"), args.pop("limit")
        found = search.audit_events(ctx, search.AuditFilter(**args), before=before, limit=limit)
        return {"events": search.audit_rows(ctx, found.rows), "next_before": found.next_before}


@bp.route("/login-events")
class LoginEvents(MethodView):
    @bp.arguments(LoginQuery, location="query")
    @bp.response(200, LoginEventsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """The login log (登录日志): attempts on the accounts of the caller's subtree (system administrators),
        or the caller's own, newest first; ``before`` pages back."""
        ctx = current_context()
        before, limit = args.pop("before"), args.pop("limit")
        found = search.login_events(ctx, search.LoginFilter(**args), before=before, limit=limit)
        return {"events": search.login_rows(ctx, found.rows), "next_before": found.next_before}


BLUEPRINTS = (bp,)
