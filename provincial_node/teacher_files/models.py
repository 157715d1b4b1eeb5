"""Tables of the teacher files area (教师电子档案).

The teacher file is stored as JSON documents on ``teacher``: ``data`` (effective, reviewed) and ``draft``
(the working copy under review). Catalogue fields and the province's custom indicators live in the same
documents, so adding an indicator needs no schema migration; every change is kept in ``teacher_history``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, defer, mapped_column

from common.db import utcnow
from common.protection import BlindIndex, ProtectedJSON, ProtectedString
from provincial_node.db import Base

# the fields of a file that hold an ID number: encrypted wherever a file document or its history is stored
ID_FIELDS: tuple[tuple[str, str], ...] = (("JBXX", "SFZJH"),)


class Teacher(Base):
    """One teacher's electronic file (教师电子档案)."""

    __tablename__ = "teacher"
    __table_args__ = (
        UniqueConstraint("doc_type", "doc_index"),
        # a unit's files by state: the review queues count them from the index alone (also serves unit_id alone)
        Index("ix_teacher_unit_id_status", "unit_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    teacher_number: Mapped[str] = mapped_column(String(13), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    doc_type: Mapped[str] = mapped_column(String(1))
    doc_number: Mapped[str] = mapped_column(ProtectedString(200))  # encrypted at rest
    # keyed blind index of doc_number: lookups and the duplicate check compare it (``Teacher.doc_index == number``)
    doc_index: Mapped[str | None] = mapped_column(BlindIndex)
    name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(24), index=True)  # teacher_files.status.FileStatus
    ever_effective: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(ProtectedJSON("file", ID_FIELDS), default=dict)  # effective file
    draft: Mapped[dict[str, Any]] = mapped_column(ProtectedJSON("file", ID_FIELDS), default=dict)  # working copy
    file_version: Mapped[int] = mapped_column(Integer, default=0)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # from the effective file, kept in step by the one effective-write path (lists filter and count on them)
    person_status: Mapped[str | None] = mapped_column(String(3), index=True)  # 人员状态 JBXX.RYZTM
    post_category: Mapped[str | None] = mapped_column(String(3))  # 现任岗位类别 JBXX.XRGWLBM
    birth_date: Mapped[str | None] = mapped_column(String(10))  # 出生日期 JBXX.CSRQ

    def set_identity(self, doc_type: str, number: str) -> None:
        """The identity document (the number encrypted when stored) and its blind index, together."""
        self.doc_type, self.doc_number, self.doc_index = doc_type, number, number


def without_documents() -> tuple[Any, ...]:
    """Loader options for lists of files: the two documents are not read (nor decrypted); touching them on such a
    row raises instead of loading them one file at a time."""
    return (defer(Teacher.data, raiseload=True), defer(Teacher.draft, raiseload=True))


class TeacherHistory(Base):
    __tablename__ = "teacher_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teacher.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    action: Mapped[str] = mapped_column(String(32))
    status_from: Mapped[str | None] = mapped_column(String(24))
    status_to: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    # [{group, index, field, old, new}]; ID numbers encrypted at rest
    changes: Mapped[list[dict[str, Any]]] = mapped_column(ProtectedJSON("changes", ID_FIELDS), default=list)
    # separation of duties (谁填报谁负责、谁审核谁负责): on an approval, the accounts that entered or changed the
    # version approved
    entered_by: Mapped[list[int] | None] = mapped_column(JSON)


class ChangeRequest(Base):
    """A change to effective information: requested by the school, approved by its supervising bureau."""

    __tablename__ = "change_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teacher.id"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("account.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{group, index, field, new}]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)


class CustomField(Base):
    """A province's own indicator (地方拓展指标), defined at run time."""

    __tablename__ = "custom_field"
    __table_args__ = (UniqueConstraint("group_code", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_code: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100), default="")
    type: Mapped[str] = mapped_column(String(16))
    code_table: Mapped[str | None] = mapped_column(String(40))  # a catalogue table, or None with codes
    codes: Mapped[dict[str, str] | None] = mapped_column(JSON)  # the field's own code list
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    filled_by: Mapped[str] = mapped_column(String(16))
    stages: Mapped[list[str] | None] = mapped_column(JSON)
    max_length: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column()
