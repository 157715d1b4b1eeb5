"""The hash chain of the audit trail: how an event's hash is made, and the check of the whole chain.

An event's hash is SHA-256 over the hash of the event before it and the event's own canonical JSON (sequence
number, time, actor, action, target, unit, reason, details; keys sorted, UTF-8, no spaces). The first event
follows :data:`GENESIS`. :func:`verify` walks the chain in sequence order and reports every break:

* ``edited``   — an event's content no longer gives its stored hash;
* ``relinked`` — an event's ``prev_hash`` is not the hash of the event before it;
* ``missing``  — a sequence number is absent (a deleted event), or the stored head is beyond the last event
  (deleted events at the end).

Someone who can rewrite the whole table *and* recompute every hash and the head is not caught by the chain
alone; ``docs/security.md`` tells the operator to keep the head (``tmis province audit verify`` prints it)
outside the database, where such a rewrite shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: Any,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_id: str,
    unit_path: str,
    reason: str | None,
    details: Any,
) -> str:
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "actor_id": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "unit_path": unit_path,
        "reason": reason,
        "details": details or {},
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical.encode("utf-8")).hexdigest()


def hash_of(event: Any) -> str:
    """The hash an event row (anything with the columns' attributes) should carry."""
    return event_hash(
        event.prev_hash,
        seq=event.seq,
        at=event.at,
        actor_id=event.actor_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        unit_path=event.unit_path,
        reason=event.reason,
        details=event.details,
    )


@dataclass(frozen=True)
class Break:
    seq: int
    kind: str  # edited | relinked | missing
    detail: str


@dataclass(frozen=True)
class Verdict:
    events: int
    head_seq: int
    head_hash: str
    breaks: tuple[Break, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify(events: Iterable[Any], head_seq: int, head_hash: str) -> Verdict:
    """Check events (in ascending ``seq``) against each other and against the stored head."""
    breaks: list[Break] = []
    expected_seq, prev, count = 1, GENESIS, 0
    for e in events:
        count += 1
        if e.seq != expected_seq:
            breaks.append(Break(expected_seq, "missing", f"events {expected_seq}..{e.seq - 1} are missing"))
        elif e.prev_hash != prev:
            breaks.append(Break(e.seq, "relinked", "prev_hash is not the hash of the event before it"))
        if hash_of(e) != e.hash:
            breaks.append(Break(e.seq, "edited", f"the content of event {e.seq} ({e.action}) does not give its hash"))
        expected_seq, prev = e.seq + 1, e.hash
    if head_seq >= expected_seq:
        breaks.append(Break(expected_seq, "missing", f"events {expected_seq}..{head_seq} (the end) are missing"))
    elif head_seq == expected_seq - 1 and head_seq > 0 and head_hash != prev:
        breaks.append(Break(head_seq, "edited", "the last event's hash differs from the chain head"))
    return Verdict(count, head_seq, head_hash, tuple(breaks))
