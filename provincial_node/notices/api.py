"""``/api/v1/notices``: the current notices (every user); publishing is on the pages and here for province
administrators."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from common.schemas import Out, Strict
from provincial_node.context import current_context
from provincial_node.notices import notices

bp = Blueprint("notices", __name__, url_prefix="/api/v1", description="Notices (通知公告)")


class NoticeIn(Strict):
    title = ma.fields.String(required=True)
    body = ma.fields.String(required=True)


class NoticeOut(Out):
    id = ma.fields.Integer()
    title = ma.fields.String()
    body = ma.fields.String()
    published_at = ma.fields.DateTime()
    withdrawn_at = ma.fields.DateTime(allow_none=True)


class NoticesOut(Out):
    notices = ma.fields.List(ma.fields.Nested(NoticeOut))


@bp.route("/notices")
class Notices(MethodView):
    @bp.response(200, NoticesOut)
    def get(self) -> Any:
        """The current notices, newest first."""
        return {"notices": notices.current(current_context(), limit=50)}

    @bp.arguments(NoticeIn)
    @bp.response(201, NoticeOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Publish a notice (province administrators)."""
        return notices.publish(current_context(), body["title"], body["body"])


BLUEPRINTS = (bp,)
