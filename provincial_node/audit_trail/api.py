"""``/api/v1/audit-events``: the audit trail of the caller's unit and the units below."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from provincial_node.audit_trail import trail
from provincial_node.audit_trail.schemas import AuditEventsOut, AuditQuery
from provincial_node.context import current_context

bp = Blueprint("audit_trail", __name__, url_prefix="/api/v1", description="Audit trail (操作日志)")


@bp.route("/audit-events")
class AuditEvents(MethodView):
    @bp.arguments(AuditQuery, location="query")
    @bp.response(200, AuditEventsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """The audit trail of the caller's unit and the units below, newest first."""
        return {"events": trail.query(current_context(), **args)}


BLUEPRINTS = (bp,)
