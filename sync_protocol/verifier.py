"""The national node's acceptance state machine for batches (python-tuf ``TrustedMetadataSet`` style).

:func:`accept_batch` takes the bytes a province sent, the province named by the authenticated request,
the trust version in force, that province's last accepted state and a lookup of stored batch hashes by
sequence, and either returns an :class:`AcceptedBatch` (with the province's next state) or raises. It
performs no I/O: the node stores the result — records, log leaf, envelope, new state — in one transaction,
**only after** this function returned.

Order of checks (each failure names its code, see docs/protocol.md §9):

1. size, framing, envelope, signature by a threshold of *this province's* keys, header schema, records,
   Merkle root (:func:`sync_protocol.batch.verify_batch`);
2. the trust version in force has not expired at ``now``; the header's log origin is this log;
3. sequence: ``seq <= last_seq`` → the stored batch at ``seq`` has the same hash: benign
   :class:`AlreadyAcceptedError`; a different hash: :class:`EquivocationError` with evidence; nothing
   stored: :class:`SequenceStaleError`. ``seq > last_seq + 1`` → :class:`SequenceGapError` (gap or
   fast-forward). Only ``last_seq + 1`` continues;
4. chain: ``prev_batch_hash`` equals the last accepted batch hash, and ``version_from`` is
   ``last_version + 1`` (nothing dropped between batches);
5. clock: ``created_at`` is not later than ``now + clock_skew``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sync_protocol.batch import DEFAULT_LIMITS, Limits, VerifiedBatch, verify_batch
from sync_protocol.canonical import format_time
from sync_protocol.errors import (
    AlreadyAcceptedError,
    ChainBrokenError,
    ClockSkewError,
    EquivocationError,
    KeyUntrustedError,
    MalformedError,
    SequenceGapError,
    SequenceStaleError,
)
from sync_protocol.identifiers import check_province
from sync_protocol.trust import TrustMetadata


@dataclass(frozen=True)
class ProvinceState:
    """What the national node remembers of a province's batch chain."""

    province: str
    last_seq: int = 0
    last_batch_hash: str | None = None
    last_version: int = 0


@dataclass(frozen=True)
class AcceptedBatch:
    batch: VerifiedBatch
    new_state: ProvinceState
    trust_version: int


def accept_batch(
    data: bytes,
    *,
    province: str,
    trust: TrustMetadata,
    state: ProvinceState,
    stored_batch_hash: Callable[[int], str | None],
    now: dt.datetime,
    limits: Limits = DEFAULT_LIMITS,
    verified: VerifiedBatch | None = None,
) -> AcceptedBatch:
    """Verify a batch against the province's state. See the module docstring for the rules and errors.

    ``verified``: what :func:`~sync_protocol.batch.verify_batch` returned for these very bytes under this very
    ``trust`` (a node may verify before it takes the province's lock, so batches verify while the previous
    one is applied); step 1 is then not repeated."""
    check_province(province)
    if state.province != province:
        raise MalformedError("state belongs to another province", state=state.province, province=province)
    if verified is not None and (
        verified.header.province != province or not data.startswith(verified.envelope + b"\n")
    ):
        raise ValueError("`verified` is not the verification of these bytes for this province")
    batch = verified if verified is not None else verify_batch(data, trust, province, limits)
    h = batch.header
    if trust.expired(now):
        raise KeyUntrustedError(
            f"trust version {trust.version} expired at {format_time(trust.expires)}", trust_version=trust.version
        )
    if h.log_origin != trust.log_origin:
        raise MalformedError("batch is addressed to another log", expected=trust.log_origin, got=h.log_origin)
    if h.seq <= state.last_seq:
        stored = stored_batch_hash(h.seq)
        if stored == batch.batch_hash:
            raise AlreadyAcceptedError(
                "identical batch already accepted", province=province, seq=h.seq, batch_hash=batch.batch_hash
            )
        if stored is not None:
            raise EquivocationError(
                f"province {province} signed two different batches with seq {h.seq}",
                province=province,
                seq=h.seq,
                accepted_batch_hash=stored,
                offered_batch_hash=batch.batch_hash,
            )
        raise SequenceStaleError(
            f"seq {h.seq} is not after the last accepted seq {state.last_seq}",
            province=province,
            seq=h.seq,
            last_seq=state.last_seq,
        )
    if h.seq != state.last_seq + 1:
        raise SequenceGapError(
            f"expected seq {state.last_seq + 1}, got {h.seq}", province=province, expected=state.last_seq + 1, got=h.seq
        )
    if h.prev_batch_hash != state.last_batch_hash:
        raise ChainBrokenError(
            "prev_batch_hash does not match the last accepted batch",
            province=province,
            seq=h.seq,
            expected=state.last_batch_hash,
            got=h.prev_batch_hash,
        )
    if h.version_from != state.last_version + 1:
        raise ChainBrokenError(
            f"versions must continue at {state.last_version + 1}, batch starts at {h.version_from}",
            province=province,
            seq=h.seq,
            expected=state.last_version + 1,
            got=h.version_from,
        )
    if h.created_at > now + limits.clock_skew:
        raise ClockSkewError(
            "created_at is in the future beyond the allowed clock skew",
            province=province,
            seq=h.seq,
            created_at=format_time(h.created_at),
            now=format_time(now),
        )
    new_state = ProvinceState(province, h.seq, batch.batch_hash, h.version_to)
    return AcceptedBatch(batch, new_state, trust.version)
