"""Errors of the sync protocol. Every one carries a stable ``code`` (the same strings as
``common.errors.ErrorCode``'s ``protocol_*`` members, documented in docs/errors.md and docs/protocol.md §9),
the HTTP status a node should answer with, a message and ``details``.

:class:`AlreadyAcceptedError` is the benign case (an identical resend), like python-tuf's
``EqualVersionNumberError``: callers treat it as "nothing to do" and return the stored receipt.
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    code = "protocol_malformed"
    http_status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class MalformedError(ProtocolError):
    """Not well-formed: bad JSON, duplicate keys, floats, big integers, schema, non-canonical bytes."""


class LimitExceededError(ProtocolError):
    code = "protocol_limit_exceeded"
    http_status = 413


class SignatureError(ProtocolError):
    """A signature does not verify, or the threshold of valid signatures is not met."""

    code = "protocol_signature_invalid"
    http_status = 401


class KeyUntrustedError(ProtocolError):
    """The key is unknown, revoked, expired or not valid for the claimed province."""

    code = "protocol_key_untrusted"
    http_status = 403


class TrustError(ProtocolError):
    """Trust metadata breaks its rules (threshold, version N+1, expiry, chain length)."""

    code = "protocol_trust_invalid"
    http_status = 403


class SequenceGapError(ProtocolError):
    """The sequence is ahead of last + 1 (a gap, or a fast-forward)."""

    code = "protocol_sequence_gap"
    http_status = 409


class SequenceStaleError(ProtocolError):
    """The sequence is at or below the last accepted one and is not an identical resend (rollback)."""

    code = "protocol_sequence_stale"
    http_status = 409


class ChainBrokenError(ProtocolError):
    """The previous-batch hash (or the version chain) does not continue the last accepted batch."""

    code = "protocol_chain_broken"
    http_status = 409


class EquivocationError(ProtocolError):
    """A different batch for a sequence number already used. ``details`` is the evidence."""

    code = "protocol_equivocation"
    http_status = 409


class ProofError(ProtocolError):
    """An inclusion or consistency proof does not verify (or has the wrong length)."""

    code = "protocol_proof_invalid"
    http_status = 422


class ClockSkewError(ProtocolError):
    code = "protocol_clock_skew"
    http_status = 422


class AlreadyAcceptedError(ProtocolError):
    """Benign: the identical batch was accepted before. ``details['batch_hash']`` names it."""

    code = "protocol_already_accepted"
    http_status = 200
