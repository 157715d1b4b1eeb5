"""Tables of the provincial node (省级节点). Schema changes go through Alembic migrations in `migrations/`.

The teacher file (电子档案) is stored as JSON documents on ``teacher``: ``data`` (effective, reviewed) and
``draft`` (the working copy under review). Catalogue fields and the province's custom indicators live in
the same documents, so adding an indicator needs no schema migration; every change is kept in
``teacher_history``. Core-indicator changes of effective files go to ``outbox`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import make_base, utcnow

Base = make_base("ProvincialBase")


class NodeSetting(Base):
    """Node-level facts written once by `init` and read at start-up (province code, key id, catalogue)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Counter(Base):
    """Gapless counters (outbox version, teacher number sequence). Incremented with UPDATE … RETURNING in
    the caller's transaction: the row lock serialises writers and a rollback returns the number."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Unit(Base):
    """One node of the unit tree: province → city → county → school (→ department)."""

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # division code or 学校标识码
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))  # province|city|county|school|department
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    path: Mapped[str] = mapped_column(String(400), index=True)  # "/1/5/23/": subtree = path prefix
    division_code: Mapped[str | None] = mapped_column(String(6))
    school_type: Mapped[str | None] = mapped_column(String(3))  # 办学类型
    urban_rural_type: Mapped[str | None] = mapped_column(String(3))  # 城乡分类代码
    sponsor_type: Mapped[str | None] = mapped_column(String(3))  # 举办者类型
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))  # a school's supervising bureau
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewChain(Base):
    """Which bureau levels review files of a school stage after the school: "county" or "county,city"."""

    __tablename__ = "review_chain"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    levels: Mapped[str] = mapped_column(String(64))


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (
        # at most one system administrator per unit
        Index(
            "uq_account_one_sysadmin_per_unit",
            "unit_id",
            unique=True,
            sqlite_where=text("role = 'sysadmin'"),
            postgresql_where=text("role = 'sysadmin'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    real_name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str | None] = mapped_column(String(30))
    phone: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # sysadmin|infoadmin|query|training|teacher
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teacher.id"))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column()


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored. Expiring and revocable."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class AuditEvent(Base):
    """Who did what, when, to what, and why: account changes, review decisions, exports (有据可查)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    unit_path: Mapped[str] = mapped_column(String(400), index=True)  # the unit concerned: scopes queries
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Teacher(Base):
    """One teacher's electronic file (教师电子档案)."""

    __tablename__ = "teacher"
    __table_args__ = (UniqueConstraint("doc_type", "doc_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    teacher_number: Mapped[str] = mapped_column(String(13), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(1))
    doc_number: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(24), index=True)  # see provincial_node.services.files
    ever_effective: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # effective file
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # working copy
    file_version: Mapped[int] = mapped_column(Integer, default=0)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


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
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{group, index, field, old, new}]


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


class OutboxEntry(Base):
    """Change capture: one entry per core change of an effective file, version gapless per province."""

    __tablename__ = "outbox"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teacher.id"), index=True)
    teacher_number: Mapped[str] = mapped_column(String(13))
    op: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the tmis-sync/1 core record
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    batch_seq: Mapped[int | None] = mapped_column(Integer, index=True)  # set when a sync round batches it


class TrustDoc(Base):
    """Trust versions received from the national node (verified as a chain before they are stored)."""

    __tablename__ = "trust_doc"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SyncBatch(Base):
    """A batch built from the outbox: kept until the national node's receipt for it verified."""

    __tablename__ = "sync_batch"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    batch_hash: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    version_from: Mapped[int] = mapped_column(Integer)
    version_to: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="built", index=True)  # built | accepted
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    accepted_at: Mapped[dt.datetime | None] = mapped_column()


class SyncRound(Base):
    """One sync round: what it did, how long each phase took, what went wrong."""

    __tablename__ = "sync_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | cli | api
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | partial | failed
    batches: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)


class InboxReceived(Base):
    """Messages pulled from the national node, verified, in sequence; processed by business modules."""

    __tablename__ = "inbox_received"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    message_hash: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)  # why processing failed (the message is kept; see sync status)


class ParkedRecord(Base):
    """A record the national node refused: parked and reported, never blocking later batches."""

    __tablename__ = "parked_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_seq: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    teacher_number: Mapped[str] = mapped_column(String(13), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()


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
    doc_number: Mapped[str | None] = mapped_column(String(30))
    remote_school_code: Mapped[str | None] = mapped_column(String(40))
    remote_school_name: Mapped[str | None] = mapped_column(String(200))


class UpwardMessage(Base):
    """A province-signed transfer message waiting to be pushed to the national node (transactional outbox:
    written in the transaction of the step that causes it; the payload is signed when sent, and Ed25519
    signs it identically every time, so a resend after a crash is recognised as the same message)."""

    __tablename__ = "upward_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfer.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # canonical, unsigned
    message_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | accepted | refused
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
