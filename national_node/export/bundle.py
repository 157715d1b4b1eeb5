"""Write the audit bundle (layout: :mod:`sync_protocol.bundle`, the same module the auditor reads it with):
trust versions, batches and receipts, transfer messages, inbox messages, the log's leaves and a checkpoint
signed over exactly those leaves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import FieldError, ValidationError
from national_node.inbox import routing
from national_node.intake.models import Batch
from national_node.keys import NodeKeys
from national_node.ledger import ledger
from national_node.ledger.models import TrustVersion
from national_node.transfers.models import TransferMessage
from sync_protocol import bundle


@dataclass(frozen=True)
class Exported:
    batches: int
    messages: int
    leaves: int


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_bundle(session: Session, keys: NodeKeys, origin: str, root: Path) -> Exported:
    """Write the bundle into ``root`` (which must not exist or be empty)."""
    if root.exists() and any(root.iterdir()):
        raise ValidationError(
            f"{root} exists and is not empty",
            [
                FieldError(
                    "export",
                    "output",
                    "导出目录已存在且非空",
                    "the bundle directory exists and is not empty",
                    str(root),
                )
            ],
        )
    for sub in bundle.DIRECTORIES:
        (root / sub).mkdir(parents=True, exist_ok=True)
    for t in session.scalars(select(TrustVersion).order_by(TrustVersion.version)):
        _write(bundle.trust_file(root, t.version), t.envelope)
    batches = 0
    for b in session.scalars(select(Batch).order_by(Batch.province_code, Batch.seq)):
        _write(bundle.batch_file(root, b.province_code, b.seq), b.data)
        _write(bundle.receipt_file(root, b.province_code, b.seq), b.receipt)
        batches += 1
    messages = 0
    for msg in session.scalars(select(TransferMessage).order_by(TransferMessage.leaf_index)):
        _write(bundle.message_file(root, msg.province_code, msg.leaf_index), msg.envelope)
        messages += 1
    routing.sequence_all(session, keys)  # every routed message signed and numbered before it is written
    for im in routing.all_messages(session):
        _write(bundle.inbox_file(root, im.province_code, im.seq), im.envelope)
    leaves = ledger.leaves(session)
    _write(bundle.leaves_file(root), b"".join(x + b"\n" for x in leaves))
    bundle.checkpoint_file(root).write_text(ledger.checkpoint(session, keys, origin, len(leaves)), encoding="utf-8")
    return Exported(batches, messages, len(leaves))
