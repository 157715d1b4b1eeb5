"""The background task table (后台任务)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from common.db import utcnow
from provincial_node.db import Base


class Task(Base):
    """One piece of long work: what (``kind``, ``params``, the uploaded ``payload``), for whom (``owner_id``, the
    unit whose subtree may see it), how far (``done``/``total``), and how it ended (``result``, ``error``)."""

    __tablename__ = "task"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # TaskState
    owner_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    unit_path: Mapped[str] = mapped_column(String(400), index=True)  # scope: visible to this subtree
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))  # the uploaded file; dropped when finished
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # counts while running; the whole result at the end
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    runner: Mapped[str | None] = mapped_column(String(80))  # which process runs it
    lease_until: Mapped[dt.datetime | None] = mapped_column()  # the runner renews it; past it, the run is lost
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
