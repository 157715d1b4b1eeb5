"""Tables of the national node (国家级节点). Schema changes go through Alembic migrations in `migrations/`.

* ``province`` holds each province's chain state (last sequence, batch hash, record version, last seen);
  intake locks that row, so batches of one province apply strictly in order while provinces run in parallel.
* ``trust_version`` keeps every signed trust document; ``log_leaf`` is the acceptance log (leaf bytes and
  hash by index); ``batch`` stores every accepted batch file content-addressed with the exact receipt
  returned, so an identical resend gets the same bytes back.
* ``teacher_core`` is the current core record per teacher number (owner province, version, fields);
  ``teacher_core_history`` every applied version, pointing into the stored batch that carried it (its fields
  are read back from there, ``intake.record_at``; only a version-0 row of a teacher received by cross-province
  transfer carries fields itself); ``refused_record`` what was not applied and why.
* ``inbox_message`` is what is routed down to a province (signed, gapless per province).
* ``transfer`` is each cross-province transfer brokered (state, steps); ``transfer_message`` every
  province-signed transfer message accepted, with its log leaf and receipt.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import make_base, utcnow

Base = make_base("NationalBase")


class NodeSetting(Base):
    """Node-level facts written once by `init` (log origin, key paths and ids)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Province(Base):
    __tablename__ = "province"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    enrolled_at: Mapped[dt.datetime | None] = mapped_column()
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_batch_hash: Mapped[str | None] = mapped_column(String(64))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[dt.datetime | None] = mapped_column()
    inbox_seq: Mapped[int] = mapped_column(Integer, default=0)  # last inbox message sequence issued
    inbox_acked: Mapped[int] = mapped_column(Integer, default=0)  # last sequence the province acknowledged


class EnrolmentToken(Base):
    """A one-time token the ministry operator hands to a province to enrol its first key."""

    __tablename__ = "enrolment_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class ProvinceKey(Base):
    __tablename__ = "province_key"

    keyid: Mapped[str] = mapped_column(String(64), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class TrustVersion(Base):
    __tablename__ = "trust_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    trust_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class LogLeaf(Base):
    __tablename__ = "log_leaf"

    index: Mapped[int] = mapped_column("leaf_index", Integer, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)  # canonical leaf JSON
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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
    identity_key: Mapped[str | None] = mapped_column(String(64), index=True)  # SHA-256 of doc type + number
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
    identity_key: Mapped[str] = mapped_column(String(64), index=True)
    teacher_number_a: Mapped[str] = mapped_column(String(13))
    province_a: Mapped[str] = mapped_column(String(2))
    teacher_number_b: Mapped[str] = mapped_column(String(13))
    province_b: Mapped[str] = mapped_column(String(2))
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()


class InboxMessage(Base):
    __tablename__ = "inbox_message"
    __table_args__ = (UniqueConstraint("province_code", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RequestNonce(Base):
    """Nonces of signed province requests seen within the replay window."""

    __tablename__ = "request_nonce"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Transfer(Base):
    """A cross-province transfer or rotation the national node brokers (sync_protocol.transfer state machine).

    ``request`` is the signed request body; ``steps`` every accepted answer, withdrawal, expiry, file and
    completion in order (what, by which province, when). ``state``: open | awaiting_file | completed |
    rejected | withdrawn | expired."""

    __tablename__ = "transfer"

    transfer_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    teacher_number: Mapped[str] = mapped_column(String(13), index=True)
    from_province: Mapped[str] = mapped_column(ForeignKey("province.code"))
    to_province: Mapped[str] = mapped_column(ForeignKey("province.code"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    next_step: Mapped[str | None] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    requested_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    file_hash: Mapped[str | None] = mapped_column(String(64))


class TransferMessage(Base):
    """Every province-signed transfer message accepted (content-addressed; logged as a message leaf)."""

    __tablename__ = "transfer_message"

    message_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(80), index=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"))
    kind: Mapped[str] = mapped_column(String(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_index: Mapped[int] = mapped_column(Integer)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
