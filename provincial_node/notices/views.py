"""通知公告 management (province administrators); every user reads them on the home page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from common.errors import ValidationError
from provincial_node.context import current_context
from provincial_node.notices import notices

bp = Blueprint("notices_pages", __name__, template_folder="templates")


@bp.route("/notices", methods=["GET", "POST"])
def notice_admin() -> Any:
    ctx = current_context()
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            notices.publish(ctx, request.form.get("title") or "", request.form.get("body") or "")
        except ValidationError as e:
            errors = {err.field: err.reason_zh for err in e.errors}
        else:
            flash("通知已发布，所有用户的首页可见。", "success")
            return redirect(url_for(".notice_admin"))
    page = render_template("notices/notice_admin.html", rows=notices.all_notices(ctx), errors=errors, form=request.form)
    return page, (422 if errors else 200)


@bp.post("/notices/<int:notice_id>/withdraw")
def withdraw(notice_id: int) -> Any:
    notices.withdraw(current_context(), notice_id)
    flash("通知已撤下。", "success")
    return redirect(url_for(".notice_admin"))


BLUEPRINTS = (bp,)
