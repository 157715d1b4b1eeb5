"""Tables of the sharing area: applications (申请) and the exports made under a grant (使用)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from provincial_node.db import Base


class SharingApplication(Base):
    """A unit's application to use teacher data: purpose, scenario, scope (units and fields) and period; reviewed
    by the level that owns the data."""

    __tablename__ = "sharing_application"

    id: Mapped[int] = mapped_column(primary_key=True)
    applicant_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    applied_by: Mapped[int] = mapped_column(ForeignKey("account.id"))
    applied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    purpose: Mapped[str] = mapped_column(Text)  # 使用用途
    scenario: Mapped[str] = mapped_column(Text)  # 应用场景
    units: Mapped[list[int]] = mapped_column(JSON)  # the units whose teachers' data is asked for (and below)
    fields: Mapped[list[str]] = mapped_column(JSON)  # "GROUP.FIELD"
    share_class: Mapped[str] = mapped_column(String(16))  # the strictest class among the fields (ShareClass)
    period_from: Mapped[dt.date] = mapped_column(Date)
    period_to: Mapped[dt.date] = mapped_column(Date)
    reviewer_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)  # the owning level
    due_at: Mapped[dt.datetime] = mapped_column()  # answer due (working days)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # SharingStatus
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)


class SharingExport(Base):
    """One export made under a grant: who, when, how many teachers, which fields (the grant was checked)."""

    __tablename__ = "sharing_export"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("sharing_application.id"), index=True)
    exported_by: Mapped[int] = mapped_column(ForeignKey("account.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    teachers: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(8))
