"""Error pages in Chinese: what happened, what the user can do, and (small) the technical message an operator
can search the log for."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from common.errors import TmisError
from provincial_node.web.session import safe_next

TITLES = {
    400: ("请求有误", "提交的内容不完整或格式不对。请返回上一页检查后重试。"),
    401: ("请先登录", "登录已失效，请重新登录。"),
    403: ("无权进行此操作", "您的账号角色或所属单位无权进行此操作。如有疑问请联系本单位系统管理员。"),
    404: ("页面或数据不存在", "您要找的页面或数据不存在，或不在您账号的管理范围内。"),
    405: ("操作方式不对", "请通过页面上的按钮进行此操作。"),
    409: ("当前状态不允许此操作", "数据的当前状态不允许此操作，请刷新页面查看最新状态。"),
    413: ("文件太大", "上传的文件超过了允许的大小。"),
    422: ("内容未通过校验", "请按提示修改后重新提交。"),
    423: ("账号已锁定", "连续登录失败次数过多，账号已被暂时锁定。"),
    500: ("系统内部错误", "系统出现了错误，运维人员可在日志中查到原因。请稍后重试。"),
    502: ("上级系统无响应", "与国家级节点通信失败，请稍后重试。"),
    503: ("系统繁忙", "数据库暂时不可用或正忙，请稍后重试。"),
}


def render(status: int, code: str, error: TmisError | None, message: str) -> Any:
    if code == "second_factor_required":  # step-up: check the key, then back to the page the form was on
        flash("此操作需要再次验证安全密钥。验证后请重新提交。", "warning")
        back = safe_next(_local_path(request.referrer)) or url_for("web.home")
        return redirect(url_for("second_factor.key_check", next=back, step_up=1))
    title, hint = TITLES.get(status, TITLES[500] if status >= 500 else TITLES[400])
    detail = error.message_zh if error is not None and error.message_zh else None
    field_errors = list(error.field_errors) if error is not None else []
    body = render_template(
        "error.html",
        status=status,
        code=code,
        title=title,
        hint=hint,
        detail=detail,
        message=message,
        field_errors=field_errors,
    )
    return body, status


def _local_path(url: str | None) -> str | None:
    """The path and query of a same-site URL (the Referer), for returning to it."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")
