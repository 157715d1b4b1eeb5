"""Publishing and withdrawing notices (province administrators); every user reads the current ones."""

from __future__ import annotations

from sqlalchemy import select

from common.errors import FieldError, NotFoundError, ValidationError
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.notices.models import Notice
from provincial_node.rules import Operation, authorize

MAX_TITLE, MAX_BODY = 100, 5000


def _require_publisher(ctx: ProvinceContext) -> None:
    authorize(ctx, Operation.NOTICES_MANAGE)


def current(ctx: ProvinceContext, limit: int = 10) -> list[Notice]:
    """The newest notices not withdrawn (every signed-in user)."""
    stmt = select(Notice).where(Notice.withdrawn_at.is_(None)).order_by(Notice.published_at.desc()).limit(limit)
    return list(ctx.session.scalars(stmt))


def all_notices(ctx: ProvinceContext) -> list[Notice]:
    _require_publisher(ctx)
    return list(ctx.session.scalars(select(Notice).order_by(Notice.published_at.desc())))


def publish(ctx: ProvinceContext, title: str, body: str) -> Notice:
    _require_publisher(ctx)
    title, body = (title or "").strip(), (body or "").strip()
    errors = []
    if not title or len(title) > MAX_TITLE:
        errors.append(
            FieldError("notice", "title", f"标题必填，不超过{MAX_TITLE}字", f"1–{MAX_TITLE} characters", title)
        )
    if not body or len(body) > MAX_BODY:
        errors.append(FieldError("notice", "body", f"正文必填，不超过{MAX_BODY}字", f"1–{MAX_BODY} characters", None))
    if errors:
        raise ValidationError("the notice is incomplete", errors)
    notice = Notice(title=title, body=body, published_at=ctx.now, published_by=ctx.user.account_id)
    ctx.session.add(notice)
    ctx.session.flush()
    trail.record(ctx, "notice.publish", "notice", notice.id, ctx.user.unit_path, title=title)
    return notice


def withdraw(ctx: ProvinceContext, notice_id: int) -> Notice:
    _require_publisher(ctx)
    notice = ctx.session.get(Notice, notice_id)
    if notice is None:
        raise NotFoundError(f"notice {notice_id} not found", message_zh="通知不存在")
    if notice.withdrawn_at is None:
        notice.withdrawn_at = ctx.now
        trail.record(ctx, "notice.withdraw", "notice", notice.id, ctx.user.unit_path, title=notice.title)
    return notice
