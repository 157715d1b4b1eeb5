"""The shell's own pages: 登录, 退出, 修改密码, 首页 (待办事项, 通知公告, composition charts), 帮助."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from markdown_it import MarkdownIt

from common.errors import AuthError, ValidationError
from common.http import keep_writes_on_error
from provincial_node.accounts import accounts, sessions
from provincial_node.audit_trail import search as audit_search
from provincial_node.context import Role, current_context, runtime
from provincial_node.notices import notices
from provincial_node.rules import Operation, may
from provincial_node.sync import status as sync_status
from provincial_node.teacher_files import change_requests, files, overview, review
from provincial_node.teacher_files.status import FileStatus
from provincial_node.transfers import local
from provincial_node.web import session as page_session

bp = Blueprint("web", __name__, template_folder="templates", static_folder=None)
GUIDE_DIR = Path(__file__).resolve().parents[2] / "docs" / "guide"
GUIDES = {
    "start": "快速上手",
    "school": "学校信息管理员",
    "bureau": "区县、地市审核人员",
    "province": "省级管理员与运维",
    "admin": "系统管理员",
    "teacher": "教师自助",
}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """登录: username and password; a failed attempt counts towards the lock-out and answers like any other."""
    if request.method == "GET":
        if g.get("page_account") is not None:
            return redirect(url_for("web.home"))
        return render_template("login.html", next=page_session.safe_next(request.args.get("next")), error=None)
    ctx = current_context()
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    target = page_session.safe_next(request.form.get("next"))
    try:
        account = accounts.verify_credentials(
            ctx, username, password, address=request.remote_addr or "unknown", channel="web"
        )
    except AuthError as e:  # wrong password, unknown or disabled account, locked, or throttled
        keep_writes_on_error()  # the failure count must survive the failed login
        page = render_template("login.html", next=target, error=e.message_zh or "用户名或密码错误", username=username)
        return page, e.http_status
    rt = runtime()
    token = sessions.open_session(
        ctx.session,
        account,
        now=ctx.now,
        lifetime=rt.settings.token_lifetime,
        address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    target = url_for("web.password") if account.must_change_password else (target or url_for("web.home"))
    response = make_response(redirect(target))
    page_session.set_cookie(response, token, rt.config)
    return response


@bp.post("/logout")
def logout() -> Response:
    ctx = current_context()
    token = request.cookies.get(page_session.COOKIE)
    if token:
        accounts.record_logout(ctx, request.remote_addr, "web")
        sessions.close(ctx.session, token, ctx.now)
    response = make_response(redirect(url_for("web.login")))
    page_session.clear_cookie(response, runtime().config)
    return response


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    """修改密码 (required at first login and after a reset)."""
    ctx = current_context()
    errors: dict[str, str] = {}
    if request.method == "POST":
        old, new, again = (request.form.get(k) or "" for k in ("old_password", "new_password", "new_password2"))
        if new != again:
            errors["new_password2"] = "两次输入的新密码不一致"
        else:
            try:
                accounts.change_password(ctx, old, new)
            except AuthError:
                errors["old_password"] = "当前密码不正确"  # noqa: S105 - a message, not a password
            except ValidationError as e:
                errors.update({err.field: err.reason_zh for err in e.errors})
            else:
                flash("密码已修改。", "success")
                return redirect(url_for("web.home"))
        return render_template("password.html", errors=errors), 422
    return render_template("password.html", errors=errors)


@bp.get("/")
def home() -> str:
    """首页: 待办事项 for the user's role and level, 通知公告, and two charts of the user's scope."""
    ctx = current_context()
    actor = ctx.user
    todo: list[dict[str, Any]] = []
    if actor.role == Role.TEACHER:
        mine = files.list_teachers(ctx)
        return render_template(
            "home_teacher.html",
            file=mine[0] if mine else None,
            notices=notices.current(ctx),
            last_sign_in=audit_search.previous_sign_in(ctx),
        )
    if may(actor, Operation.FILE_REVIEW):
        n = review.review_queue_count(ctx)
        if n:
            todo.append({"label": "待我审核的教师档案", "count": n, "url": url_for("review_pages.review_queue")})
    if may(actor, Operation.CHANGE_REQUEST_DECIDE):
        n = len(change_requests.waiting_for(ctx))
        if n:
            url = url_for("review_pages.change_requests")
            todo.append({"label": "待我审批的变更申请", "count": n, "url": url})
    if may(actor, Operation.TRANSFER_DECIDE):
        n = len(local.pending(ctx))
        if n:
            todo.append(
                {"label": "待我办理的调动、交流轮岗", "count": n, "url": url_for("transfers_pages.transfer_list")}
            )
    if may(actor, Operation.FILE_EDIT):
        n = files.count_teachers(ctx, status=FileStatus.REJECTED, own_unit=True)
        if n:
            url = url_for("teacher_files_pages.teacher_list", status=FileStatus.REJECTED)
            todo.append({"label": "被退回待修改的档案", "count": n, "url": url})
    if may(actor, Operation.SYNC_OPERATE):
        n = sync_status.status(ctx.session)["parked_records"]
        if n:
            todo.append({"label": "国家节点拒收、待处理的记录", "count": n, "url": url_for("ops.sync")})
    charts = overview.composition(ctx) if may(actor, Operation.FILES_LIST) else None
    return render_template(
        "home.html",
        todo=todo,
        notices=notices.current(ctx),
        charts=charts,
        last_sign_in=audit_search.previous_sign_in(ctx),
    )


@bp.get("/help/")
def help_index() -> str:
    return render_template("help_index.html", guides=GUIDES)


@bp.get("/help/<guide>")
def help(guide: str) -> str:
    """A page of the user guide (docs/guide/<guide>.md), rendered."""
    if guide not in GUIDES:
        abort(404)
    path = GUIDE_DIR / f"{guide}.md"
    if not path.is_file():
        abort(404)
    html = _markdown().render(path.read_text(encoding="utf-8").replace("](../screenshots/", "](/help/screenshots/"))
    return render_template("help.html", title=GUIDES[guide], body=html, guides=GUIDES)


def _markdown() -> MarkdownIt:
    """CommonMark with tables, no raw HTML, and each heading's text as its id (the help links' anchors)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def heading_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("id", tokens[idx + 1].content.strip())
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("heading_open", heading_open)
    return md


@bp.get("/help/screenshots/<name>")
def help_screenshot(name: str) -> Response:
    if not name.endswith(".png") or "/" in name:
        abort(404)
    return send_from_directory(GUIDE_DIR.parent / "screenshots", name, max_age=3600)
