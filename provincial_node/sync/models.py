"""Tables of this province's side of tmis-sync/1: the outbox (change capture), batches, rounds, trust,
inbox, parked records, and the upward messages areas queue for the national node (transactional outboxes:
written in the transaction of the change that causes them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from common.enums import LabelledStrEnum
from common.protection import ProtectedString
from provincial_node.db import Base


class BatchStatus(LabelledStrEnum):
    BUILT = "built", "已生成，待推送"
    ACCEPTED = "accepted", "国家节点已接收"


class MessageStatus(LabelledStrEnum):
    PENDING = "pending", "待推送"
    ACCEPTED = "accepted", "国家节点已接收"
    REFUSED = "refused", "国家节点拒收"


class RoundStatus(LabelledStrEnum):
    RUNNING = "running", "进行中"
    OK = "ok", "成功"
    PARTIAL = "partial", "部分成功"
    FAILED = "failed", "失败"


class RoundTrigger(LabelledStrEnum):
    SCHEDULE = "schedule", "定时"
    CLI = "cli", "命令行"
    API = "api", "接口/页面"


class OutboxEntry(Base):
    """Change capture: one entry per core change of an effective file, version gapless per province."""

    __tablename__ = "outbox"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teacher.id"), index=True)
    teacher_number: Mapped[str] = mapped_column(String(13))
    op: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the tmis-sync/1 core record
    # its canonical bytes (the batch line) and RFC 6962 leaf hash, written once with the entry: a batch is
    # built by concatenating them (sync.outbox.entry_values)
    record_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
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
    # the signed file (about 0.6 MB for 1 000 records): loaded only when read, not with every batch row
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
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
    # what else the round did: batches re-signed, a restore detected and repaired, the reconciliation's outcome
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


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
    resent_version: Mapped[int | None] = mapped_column(Integer)  # `sync reload --parked`: the record sent again


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


class CoreLeaf(Base):
    """The province's core view as the national node should hold it, one leaf per teacher number: the version and
    record hash of its newest record in an accepted batch that was not refused (transferred-out teachers have
    none). Folded in incrementally from accepted batches (:mod:`.reconcile`); the digest tree is built on it."""

    __tablename__ = "core_leaf"

    teacher_number: Mapped[str] = mapped_column(String(13), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    record_hash: Mapped[str] = mapped_column(String(64))


class DigestBucket(Base):
    """The digest of each non-empty bucket of the core view's tree (sync_protocol.digest), kept in step with
    ``core_leaf``."""

    __tablename__ = "digest_bucket"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))


class RecoveryEntry(Base):
    """A teacher number whose national version is newer than this node's data: found when the node, restored
    from an older backup, adopted batches the national node had accepted after the backup. The edit must be
    entered again (recovery report, ``tmis province sync recovery``)."""

    __tablename__ = "recovery_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    teacher_number: Mapped[str] = mapped_column(String(13), index=True)
    national_version: Mapped[int] = mapped_column(Integer)  # the newest record version the national node holds
    local_version: Mapped[int | None] = mapped_column(Integer)  # the newest this node still has (None: none)
    batch_seq: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()


class SealKey(Base):
    """A province seal key (sync_protocol.seal): ID numbers leave the province sealed under it. The key is stored
    encrypted under the node data key; ``wrapped`` is the registration sent to the national node (the key
    wrapped to national seal key ``recipient``), kept so that a registration whose answer was lost is sent again
    unchanged; ``registered_at`` is set when the national node confirmed it."""

    __tablename__ = "seal_key"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(ProtectedString(200))  # base64 of the 32-byte key, encrypted at rest
    recipient: Mapped[str] = mapped_column(String(40))
    wrapped: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[dt.datetime | None] = mapped_column()
