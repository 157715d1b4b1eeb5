"""The transfers area's table: one row per transfer (调动) or exchange rotation (交流轮岗)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from common.protection import ProtectedString
from provincial_node.db import Base


class Transfer(Base):
    """A transfer (调动) or an exchange rotation (交流轮岗) of one teacher, step by step (暂行办法 arts. 23–24).

    ``kind``: ``transfer`` (receiving school starts → its bureau → sending school → sending bureau; the file
    moves), ``rotation`` (without personnel change: sending school starts → its bureau; the teacher stays),
    ``rotation_transfer`` (with personnel change: sending school → its bureau → receiving school → its
    bureau; then the file moves). ``steps`` records every decision (who, when, what, why).
    """

    __tablename__ = "transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # None only on the receiving side of a cross-province request (the file arrives on completion)
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teacher.id"), index=True)
    # None only on the receiving side of a cross-province request (the sending school is remote)
    from_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    to_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    to_unit_name: Mapped[str | None] = mapped_column(String(200))  # rotation to a unit outside the tree
    # open | completed | rejected | withdrawn | expired
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    next_step: Mapped[str | None] = mapped_column(String(32))
    rotation_type: Mapped[str | None] = mapped_column(String(2))  # 交流轮岗类型
    start_month: Mapped[str | None] = mapped_column(String(7))
    end_month: Mapped[str | None] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(Text)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))  # None: started in another province
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # cross-province (跨省) requests only: the protocol transfer id, the other province, this node's side
    # ("from" holds the teacher, "to" receives), who is asked for and the school in the other province
    transfer_uid: Mapped[str | None] = mapped_column(String(80), unique=True)
    remote_province: Mapped[str | None] = mapped_column(String(2))
    role: Mapped[str | None] = mapped_column(String(4))
    teacher_number: Mapped[str | None] = mapped_column(String(13), index=True)
    doc_type: Mapped[str | None] = mapped_column(String(1))
    doc_number: Mapped[str | None] = mapped_column(ProtectedString(200))  # encrypted at rest
    remote_school_code: Mapped[str | None] = mapped_column(String(40))
    remote_school_name: Mapped[str | None] = mapped_column(String(200))
