"""Receipts of the national node, verified once for batches and for upward messages: a signed checkpoint
of the trusted log key and the inclusion of a leaf naming exactly what was sent."""

from __future__ import annotations

from typing import Any

from common.errors import SyncError
from sync_protocol.canonical import canonical_bytes
from sync_protocol.log import verify_receipt
from sync_protocol.trust import TrustMetadata


def verified_receipt(trust: TrustMetadata, receipt: Any, **expected: Any) -> bytes:
    """The receipt's canonical bytes, once it verified and its leaf holds every ``expected`` value
    (``batch_hash=…, seq=…`` for a batch; ``message_hash=…`` for a message)."""
    data = canonical_bytes(receipt)
    r, _checkpoint = verify_receipt(data, origin=trust.log_origin, log_keys=trust.log_keys)
    wrong = {k: v for k, v in expected.items() if r.leaf.get(k) != v}
    if wrong:
        raise SyncError("the receipt is for something else than was sent", details={"expected": wrong})
    return data
