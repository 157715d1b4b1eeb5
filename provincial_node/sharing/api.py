"""``/api/v1/sharing``: the fields' sharing classes, data-sharing applications, decisions and granted exports."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from common.catalogue.sharing import share_class
from common.http import attachment
from provincial_node.context import current_context
from provincial_node.sharing import applications
from provincial_node.sharing.schemas import (
    ApplicationIn,
    ApplicationOut,
    ApplicationQuery,
    ApplicationsOut,
    DecisionIn,
    ExportQuery,
    FieldClassesOut,
)

bp = Blueprint("sharing", __name__, url_prefix="/api/v1", description="Data-sharing applications (信息共享)")
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}


@bp.route("/sharing/classes")
class Classes(MethodView):
    @bp.response(200, FieldClassesOut)
    def get(self) -> Any:
        """Every field's class: 无条件共享 (unconditional), 有条件共享 (conditional), 不予共享 (withheld)."""
        out = []
        for g in current_context().catalogue.ordered_groups:
            for f in g.fields:
                c = share_class(g.code, f.code)
                out.append(
                    {"group": g.code, "field": f.code, "label": f.label, "share_class": c, "share_class_label": c.label}
                )
        return {"fields": out}


@bp.route("/sharing/applications")
class Applications(MethodView):
    @bp.arguments(ApplicationQuery, location="query")
    @bp.response(200, ApplicationsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Applications made by, or waiting for, units of the caller's subtree."""
        return {"applications": applications.in_scope(current_context(), args["status"])}

    @bp.arguments(ApplicationIn)
    @bp.response(201, ApplicationOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Apply to use teacher data: purpose, scenario, units, groups and fields, period."""
        return applications.apply(current_context(), **body)


@bp.route("/sharing/applications/<int:app_id>/decision")
class Decision(MethodView):
    @bp.arguments(DecisionIn)
    @bp.response(200, ApplicationOut)
    def post(self, body: dict[str, Any], app_id: int) -> Any:
        """The owning level approves, or refuses with its reasons."""
        return applications.decide(current_context(), app_id, body["decision"], body["reason"])


@bp.route("/sharing/applications/<int:app_id>/export")
class Export(MethodView):
    @bp.arguments(ExportQuery, location="query")
    @bp.response(200, description="the granted data (xlsx or csv)")
    def post(self, args: dict[str, Any], app_id: int) -> Any:
        """Export what the grant allows (checked and recorded)."""
        fmt = args["format"]
        data = applications.export(current_context(), app_id, fmt)
        return Response(
            data, mimetype=MIME[fmt], headers={"Content-Disposition": attachment(f"sharing-{app_id}.{fmt}")}
        )


BLUEPRINTS = (bp,)
