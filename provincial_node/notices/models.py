"""The notices table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from provincial_node.db import Base


class Notice(Base):
    """A notice (通知公告) published by a province administrator; withdrawn notices stay for the record."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    published_by: Mapped[int] = mapped_column(ForeignKey("account.id"))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column()
