"""The intake's tables.

``batch`` stores every accepted batch file content-addressed with the exact receipt returned, so an
identical resend gets the same bytes back; ``evidence`` every equivocation. ``teacher_core`` is the current
core record per teacher number (owner province, version, fields); ``teacher_core_history`` every applied
version, pointing into the stored batch that carried it (its fields are read back from there,
:func:`national_node.intake.intake.record_at`; only a version-0 row of a teacher received by cross-province
transfer carries fields itself); ``refused_record`` what was not applied and why; ``duplicate_identity`` the
same identity document under teacher numbers of two provinces (一人一号).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from national_node.db import Base


class Batch(Base):
    __tablename__ = "batch"
    __table_args__ = (UniqueConstraint("province_code", "seq"),)

    batch_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"))
    seq: Mapped[int] = mapped_column(Integer)
    leaf_index: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # the batch file as received
    receipt: Mapped[bytes] = mapped_column(LargeBinary)  # the receipt returned (identical on resend)
    record_count: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    refused_count: Mapped[int] = mapped_column(Integer, default=0)


class Evidence(Base):
    """Equivocation: a second, different signed batch for a used sequence number."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    accepted_batch_hash: Mapped[str] = mapped_column(String(64))
    offered_batch_hash: Mapped[str] = mapped_column(String(64))
    offered_data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)


class TeacherCore(Base):
    __tablename__ = "teacher_core"

    teacher_number: Mapped[str] = mapped_column(String(13), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    withheld: Mapped[list[str]] = mapped_column(JSON)
    identity_key: Mapped[str | None] = mapped_column(String(68), index=True)  # bi1: keyed index (national_node.sealing)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TeacherCoreHistory(Base):
    __tablename__ = "teacher_core_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    teacher_number: Mapped[str] = mapped_column(String(13), index=True)
    province_code: Mapped[str] = mapped_column(String(2))
    version: Mapped[int] = mapped_column(Integer)
    batch_hash: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(16))
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # null: the record is in batch ``batch_hash``
    applied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RefusedRecord(Base):
    __tablename__ = "refused_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    teacher_number: Mapped[str] = mapped_column(String(13))
    reason: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refused_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DuplicateIdentity(Base):
    """The same identity document under teacher numbers of two provinces (一人一号 broken)."""

    __tablename__ = "duplicate_identity"
    __table_args__ = (UniqueConstraint("teacher_number_a", "teacher_number_b"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_key: Mapped[str] = mapped_column(String(68), index=True)
    teacher_number_a: Mapped[str] = mapped_column(String(13))
    province_a: Mapped[str] = mapped_column(String(2))
    teacher_number_b: Mapped[str] = mapped_column(String(13))
    province_b: Mapped[str] = mapped_column(String(2))
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
