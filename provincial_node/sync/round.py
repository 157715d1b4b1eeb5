"""Sync rounds of a provincial node (DESIGN §6.7): fetch the trust versions and choose the signing key
(:mod:`.keys`), build batches from the outbox, check the chain position at the national node (:mod:`.recovery`),
push the batches in order, verify the receipts, pull and process the inbox, and compare the core view's digest
with the national store (:mod:`.reconcile`).

Resumable after a crash at any point, with nothing lost or applied twice:

* building a batch marks its outbox entries and stores the batch file in one transaction; a crash before
  the commit leaves the entries for the next round, a crash after leaves a built batch that will be sent;
* pushing is idempotent: the national node answers an identical resend with the same receipt, so a batch
  whose receipt was lost is simply sent again; a batch is marked accepted only after its receipt verified
  (signed checkpoint of the trusted log key, inclusion of a leaf naming exactly this batch hash);
* upward messages (areas queue them: transfer messages, :mod:`provincial_node.transfers.cross_province`) are
  pushed after the batches, in the order they were written, and marked sent only after their receipt verified;
* inbox messages are stored only after verification, strictly in sequence, then acknowledged; a message
  pulled twice is recognised and skipped. A message is applied by the handler its area registered
  (:mod:`.inbox_handlers`) in the transaction that stores it, so its effect happens exactly once.

Network errors and 5xx are retried with exponential backoff and jitter; a record the national node refuses
is parked and reported (``parked_record``) and never blocks the following batches. Every round is recorded
(start, end, status, batches, records, bytes, per-phase timings, errors).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import ErrorCode, SyncError, TmisError, TransportError
from common.transport import Transport
from provincial_node.context import ProvinceRuntime
from provincial_node.sync import inbox_pull, keys, outbox, reconcile, recovery, sealing
from provincial_node.sync.inbox_handlers import InboxDispatch
from provincial_node.sync.keys import KeyRing
from provincial_node.sync.models import (
    BatchStatus,
    MessageStatus,
    ParkedRecord,
    RoundStatus,
    SyncBatch,
    SyncRound,
    TrustDoc,
    UpwardMessage,
)
from provincial_node.sync.receipts import verified_receipt
from provincial_node.sync.trust import store_trust, trust_chain
from sync_protocol.batch import assemble_batch
from sync_protocol.dsse import encode_envelope, envelope_from_json
from sync_protocol.errors import ProtocolError
from sync_protocol.keys import Signer
from sync_protocol.request_auth import sign_request
from sync_protocol.transfer import sign_transfer_message
from sync_protocol.trust import TrustMetadata

logger = logging.getLogger(__name__)
BATCH_TYPE = "application/vnd.tmis.batch.v1"  # docs/protocol.md §14.4
TRANSFER_TYPE = "application/vnd.tmis.transfer-message.v1+json"
HANDOFF_BYTES = 8 * 1024 * 1024  # built batch files kept in memory for the push (about 13 batches of 1 000 records)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SyncSettings:
    province: str
    batch_size: int = 1000
    push_window: int = 2  # batch requests in flight during a push (1 = strictly one at a time)
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    key_path: Path | None = None  # the ring is read again from here at the start of every round (keys.KeyRing)


@dataclass
class RoundStats:
    """What one round did, phase by phase (stored on its ``sync_round`` row)."""

    batches: int = 0
    records: int = 0
    bytes_sent: int = 0
    messages: int = 0
    notes: dict[str, Any] = field(default_factory=dict)  # re-signed batches, recovery, reconciliation
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, phase: str, e: Exception) -> None:
        self.errors.append(
            {
                "phase": phase,
                "code": str(getattr(e, "code", "")),
                "message": str(e),
                "details": json.loads(json.dumps(getattr(e, "details", {}), default=str)),
            }
        )


class SyncClient:
    """Runs sync rounds for one province: ``runtime`` gives the database, the catalogue version (the batches'
    schema version), and the areas' inbox handlers."""

    def __init__(
        self, runtime: ProvinceRuntime, transport: Transport, signer: Signer | KeyRing, settings: SyncSettings
    ) -> None:
        self.runtime = runtime
        self.factory = runtime.session_factory
        self.transport = transport
        self.ring = signer if isinstance(signer, KeyRing) else KeyRing.of(signer)
        self.signer = self.ring.newest()  # the current key is chosen again at the start of every round (_keys)
        self.settings = settings
        self.schema_version = runtime.catalogue.version
        self.dispatch: InboxDispatch = runtime.inbox or InboxDispatch()
        self._verified: TrustMetadata | None = None
        # Batches built in this round, kept in memory (at most HANDOFF_BYTES) until pushed, so that the push does
        # not read back the file the build just wrote (in a 1 000-change round that read was a tenth of the round).
        self._handoff: dict[int, tuple[str, bytes]] = {}

    # ------------------------------------------------------------------------------------------ transport
    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        signed: bool = True,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            headers = {"Content-Type": content_type}
            if signed:  # signed anew for every attempt: a nonce is used once
                headers.update(sign_request(self.signer, self.settings.province, method, path, body))
            try:
                r = self.transport.request(method, path, body, headers)
                payload = json.loads(r.body or b"{}")
                if r.status >= 400:
                    raise SyncError(
                        payload.get("message", f"HTTP {r.status}"),
                        code=payload.get("code") or ErrorCode.TRANSPORT_FAILED,
                        details={"status": r.status, "code": payload.get("code"), "details": payload.get("details")},
                    )
                return payload
            except TransportError as e:
                if not retry or attempt >= self.settings.max_attempts or not e.details.get("retryable"):
                    raise
                delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
                logger.warning("%s %s failed (%s); retry %d in %.1fs", method, path, e, attempt, delay)
                self.settings.sleep(delay)

    # ----------------------------------------------------------------------------------------------- enrol
    def enrol(self, token: str, signer: Signer | None = None) -> TrustMetadata:
        """Enrol a key (``signer``, default this node's newest) with a one-time token from the ministry: the
        first key, or a new key of ``tmis province keys rotate``. Stores every trust version the answer carries;
        from the next round on the newest listed key signs (:mod:`.keys`)."""
        signer = signer or self.ring.newest()
        body = json.dumps(
            {
                "province": self.settings.province,
                "token": token,
                "public_key": base64.b64encode(signer.public.raw).decode(),
            }
        ).encode()
        payload = self.call("POST", "/api/v1/enrol", body, signed=False)
        docs = [encode_envelope(envelope_from_json(d)) for d in payload["trust"]]
        with self.factory.begin() as s:
            trust = store_trust(s, docs)
        if signer.keyid not in trust.province_keys(self.settings.province).keys:
            raise SyncError("the national node did not list this node's key for the province")
        self.signer = signer
        try:  # the seal key at enrolment, so that records from now on leave sealed (the next round retries)
            sealing.ensure_registered(self.factory, self.call, self.settings.province, self.trust)
            with self.factory.begin() as s:
                outbox.reseal_backlog(s)
                sealing.reseal_messages(s)
        except (TmisError, ProtocolError) as e:
            logger.warning("seal key not registered at enrolment (%s); the next sync round registers it", e)
        return trust

    # ----------------------------------------------------------------------------------------------- round
    def run_round(self, trigger: str = "cli", progress: Progress | None = None) -> SyncRound:
        self._handoff.clear()  # only this round's build hands batches over (a later round may re-sign them)
        with self.factory.begin() as s:
            rnd = SyncRound(trigger=trigger)
            s.add(rnd)
            s.flush()
            round_id = rnd.id
        stats = RoundStats()
        status = RoundStatus.OK
        phases = (
            ("keys", self._keys),  # trust versions fetched, the current key chosen, pending batches re-signed
            ("seal", self._seal),  # a seal key registered with the national node, the held backlog sealed
            ("build", self._build),
            ("recovery", self._recovery),  # restored from an older backup? adopt the national chain before a push
            ("push", self._push),
            ("messages", self._push_messages),
            ("pull", self._pull),
            ("answers", self._push_messages),  # what processing the inbox queued (automatic answers, files)
            ("reconcile", self._reconcile),  # the core view's digest compared with the national store
        )
        for phase, fn in phases:
            started = time.monotonic()
            try:
                fn(stats, progress)
            except (TmisError, ProtocolError) as e:
                stats.error(phase, e)
                stats.timings[phase] = round(time.monotonic() - started, 3)
                if phase in ("keys", "seal", "build", "recovery", "push"):
                    status = RoundStatus.FAILED
                    break
                status = RoundStatus.PARTIAL
            stats.timings[phase] = round(time.monotonic() - started, 3)
        if status == RoundStatus.OK and stats.errors:
            status = RoundStatus.PARTIAL  # e.g. a transfer message the national node refused (listed in errors)
        with self.factory.begin() as s:
            rnd = s.get(SyncRound, round_id)
            rnd.finished_at, rnd.status = utcnow(), status
            for k, v in asdict(stats).items():
                setattr(rnd, k, v)
        with self.factory() as s:
            return s.get(SyncRound, round_id)

    def _keys(self, stats: RoundStats, progress: Progress | None) -> None:
        """Fetch the trust versions (a rotation or revocation is known before anything is signed), choose the
        current key, and re-sign what was built but not accepted with it (:mod:`.keys`)."""
        try:
            docs = self.call("GET", "/api/v1/trust", signed=False, retry=False)["trust"]
        except TransportError as e:  # offline: build with the stored trust; the push says what failed
            logger.warning("trust versions not fetched (%s); using the stored ones", e)
            docs = []
        if self.settings.key_path is not None:  # a key added by `keys rotate` since the last round
            self.ring = KeyRing.load(self.settings.key_path)
        with self.factory.begin() as s:
            trust = store_trust(s, [encode_envelope(envelope_from_json(d)) for d in docs]) if docs else self.trust(s)
            self.signer = self.ring.current(trust, self.settings.province)
            resigned = keys.resign_pending(s, self.signer)
        if resigned:
            logger.info("re-signed built batches %s with key %s", resigned, self.signer.keyid[: keys.SHORT_ID])
            stats.notes["resigned"] = resigned

    def _seal(self, stats: RoundStats, progress: Progress | None) -> None:
        """:mod:`.sealing`: register a seal key wrapped to the national node's current seal key (the first round,
        and after the national node rotated it), then seal what was held under the data key meanwhile (outbox
        records, queued transfer messages) — before anything is built or sent."""
        try:
            registered = sealing.ensure_registered(self.factory, self.call, self.settings.province, self.trust)
        except TransportError as e:  # offline: what is sealed stays sealed; what is held waits (build says so)
            logger.warning("seal key not checked with the national node (%s)", e)
            registered = None
        if registered:
            stats.notes["seal_key_registered"] = registered
        with self.factory.begin() as s:
            resealed = outbox.reseal_backlog(s) + sealing.reseal_messages(s)
            waiting = outbox.held(s) if sealing.current_key(s) is None else 0
        if resealed:
            stats.notes["resealed"] = resealed
        if waiting:  # nothing of the backlog may leave unsealed: the build waits until a seal key is registered
            raise SyncError(
                f"{waiting} outbox records wait for this province's seal key (the national node was not reached)",
                code=ErrorCode.PROTOCOL_SEAL_INVALID,
                details={"held": waiting},
            )

    def _recovery(self, stats: RoundStats, progress: Progress | None) -> None:
        """:mod:`.recovery`: when the national node accepted more of this province's chain than this database
        knows (restored from an older backup, or an answer lost), adopt it before anything is pushed; a batch
        built here under a sequence number it used is dropped unsent, and its entries are built again."""
        done = recovery.recover(self.factory, self.call, self.settings.province, self.trust)
        if done:
            stats.notes["recovery"] = done
        if done.get("dropped"):
            self._build(stats, progress)
        if done.get("lost_edits"):
            stats.errors.append(
                {
                    "phase": "recovery",
                    "code": ErrorCode.RESTORED_FROM_BACKUP.value,
                    "message": f"restored from an older backup: {len(done['lost_edits'])} teacher(s) have a newer "
                    "version at the national node; see `tmis province sync recovery`",
                    "details": {"teacher_numbers": done["lost_edits"]},
                }
            )

    def _reconcile(self, stats: RoundStats, progress: Progress | None) -> None:
        """:mod:`.reconcile`: compare the core view's digest with the national store; report what differs."""
        outcome = reconcile.reconcile(self.factory, self.call, self.settings.province)
        stats.notes["reconcile"] = outcome
        if outcome.get("match") is False:
            stats.errors.append(
                {
                    "phase": "reconcile",
                    "code": ErrorCode.RECONCILIATION_MISMATCH.value,
                    "message": f"{len(outcome['differing'])} teacher number(s) differ from the national store"
                    + (" (more buckets differ than one round descends into)" if outcome["truncated"] else "")
                    + "; repair with `tmis province sync reload`",
                    "details": {"differing": outcome["differing"][:200]},
                }
            )

    def _build(self, stats: RoundStats, progress: Progress | None) -> None:
        """Batches from the outbox: each concatenates the entries' stored canonical bytes, and its Merkle root is
        computed over their stored leaf hashes (:func:`outbox.entry_values` wrote both when the entry was
        created), then the header is signed. One transaction per batch marks its entries and stores the file."""
        cpu = time.process_time()
        while True:
            with self.factory.begin() as s:
                last_seq, last_hash, done = outbox.last_batched(s)
                entries = outbox.pending_lines(s, done, self.settings.batch_size)
                if not entries:
                    break
                version_from, version_to = entries[0][0], entries[-1][0]
                if version_from != done + 1 or version_to - version_from + 1 != len(entries):
                    raise SyncError(
                        "the outbox has a gap in its versions",
                        details={"after": done, "first": version_from, "last": version_to, "count": len(entries)},
                    )
                seq = last_seq + 1
                built = assemble_batch(
                    province=self.settings.province,
                    seq=seq,
                    prev_batch_hash=last_hash,
                    created_at=utcnow(),
                    schema_version=self.schema_version,
                    log_origin=self.trust(s).log_origin,
                    version_from=version_from,
                    lines=[line for _v, line, _h in entries],
                    leaves=[leaf for _v, _l, leaf in entries],
                    signer=self.signer,
                )
                outbox.mark_batched(s, version_from, version_to, seq)
                s.add(
                    SyncBatch(
                        seq=seq,
                        batch_hash=built.batch_hash,
                        data=built.data,
                        version_from=version_from,
                        version_to=version_to,
                    )
                )
            # committed: hand the file to the push while the budget lasts
            if sum(len(d) for _h, d in self._handoff.values()) + len(built.data) <= HANDOFF_BYTES:
                self._handoff[seq] = (built.batch_hash, built.data)
        # this process's CPU time in the build (the benchmark's build cost per record; PostgreSQL's not included)
        stats.timings["build_cpu"] = round(stats.timings.get("build_cpu", 0) + time.process_time() - cpu, 3)

    def trust(self, s: Session) -> TrustMetadata:
        """The newest verified trust version. Stored versions never change (``store_trust`` refuses a
        different document under a known version), so the chain is verified again only when it grew."""
        newest = s.scalar(select(func.max(TrustDoc.version)))
        if self._verified is None or self._verified.version != newest:
            self._verified = trust_chain(s)[-1]
        return self._verified

    def _push(self, stats: RoundStats, progress: Progress | None) -> None:
        """Send the built batches in order, up to ``push_window`` requests in flight: batch n + 1 travels and
        is verified by the national node while batch n is applied. Receipts are checked and stored strictly
        in sequence. A batch that reached the national node before its predecessor was accepted is refused
        as a gap; it is simply sent again once the predecessor's receipt is in."""
        with self.factory() as s:
            todo = list(
                s.scalars(select(SyncBatch.seq).where(SyncBatch.status == BatchStatus.BUILT).order_by(SyncBatch.seq))
            )
        if not todo:
            return
        window = max(1, self.settings.push_window)
        pending: deque[tuple[int, bytes, str, int, Future[dict[str, Any]]]] = deque()
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix="push") as pool:
            try:
                for i, seq in enumerate(todo, start=1):
                    data, batch_hash, count = self._load_batch(seq)
                    pending.append((seq, data, batch_hash, count, pool.submit(self._send_batch, data)))
                    while len(pending) >= window or (pending and i == len(todo)):
                        self._settle(pending.popleft(), stats)
                        if progress:
                            progress("push", stats.batches, len(todo))
            finally:
                for *_rest, fut in pending:  # a failure stops the round: do not wait for answers we will not use
                    fut.cancel()

    def _load_batch(self, seq: int) -> tuple[bytes, str, int]:
        """A built batch's file, hash and record count: the file from this round's build when it handed it over
        (and it is still the stored one: same batch hash), else read from the database."""
        with self.factory() as s:
            batch_hash, version_from, version_to = s.execute(
                select(SyncBatch.batch_hash, SyncBatch.version_from, SyncBatch.version_to).where(SyncBatch.seq == seq)
            ).one()
            handed = self._handoff.pop(seq, None)
            if handed is not None and handed[0] == batch_hash:
                data = handed[1]
            else:
                data = s.scalar(select(SyncBatch.data).where(SyncBatch.seq == seq))
            return data, batch_hash, version_to - version_from + 1

    def _send_batch(self, data: bytes) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/provinces/{self.settings.province}/batches", data, content_type=BATCH_TYPE)

    def _settle(self, item: tuple[int, bytes, str, int, Future[dict[str, Any]]], stats: RoundStats) -> None:
        """Wait for one batch's answer (in sequence), check its receipt and store it."""
        seq, data, batch_hash, count, fut = item
        try:
            try:
                payload = fut.result()
            except SyncError as e:
                if e.code != ErrorCode.PROTOCOL_SEQUENCE_GAP:
                    raise
                payload = self._send_batch(data)  # it overtook its predecessor, which is accepted by now
        except (TmisError, ProtocolError) as e:
            with self.factory.begin() as s:
                b = s.get(SyncBatch, seq)
                b.attempts += 1
                b.last_error = str(e)
            raise
        with self.factory.begin() as s:
            receipt = verified_receipt(self.trust(s), payload["receipt"], batch_hash=batch_hash, seq=seq)
            b = s.get(SyncBatch, seq)
            b.status, b.receipt, b.accepted_at, b.attempts = BatchStatus.ACCEPTED, receipt, utcnow(), b.attempts + 1
            for refused in payload.get("refused", []):
                exists = s.scalar(
                    select(ParkedRecord.id).where(
                        ParkedRecord.batch_seq == seq, ParkedRecord.version == refused["version"]
                    )
                )
                if not exists:
                    s.add(
                        ParkedRecord(
                            batch_seq=seq,
                            version=refused["version"],
                            teacher_number=refused["teacher_number"],
                            reason=refused["reason"],
                            details=refused.get("details") or {},
                        )
                    )
        stats.batches += 1
        stats.records += count
        stats.bytes_sent += len(data)

    def _push_messages(self, stats: RoundStats, progress: Progress | None) -> None:
        """Push pending upward messages in the order they were written. A message the national node refuses
        (4xx with a protocol code) is marked refused and handed to its area's refusal handler; network errors
        stop the phase and the message is sent again next round (an identical resend gets the stored receipt)."""
        with self.factory() as s:
            todo = list(
                s.scalars(
                    select(UpwardMessage.id)
                    .where(UpwardMessage.status == MessageStatus.PENDING)
                    .order_by(UpwardMessage.id)
                )
            )
        for i, mid in enumerate(todo, start=1):
            with self.factory() as s:
                m = s.get(UpwardMessage, mid)
                data, message_hash = sign_transfer_message(m.payload, self.signer), m.message_hash
            try:
                payload = self.call(
                    "POST", f"/api/v1/provinces/{self.settings.province}/transfers", data, content_type=TRANSFER_TYPE
                )
            except SyncError as e:
                if not 400 <= int(e.details.get("status", 0)) < 500:
                    raise
                with self.factory.begin() as s:
                    self._refused(s, s.get(UpwardMessage, mid), str(e.code), str(e))
                stats.errors.append({"phase": "messages", "code": str(e.code), "message": str(e), "details": {}})
                continue
            with self.factory.begin() as s:
                receipt = verified_receipt(self.trust(s), payload["receipt"], message_hash=message_hash)
                m = s.get(UpwardMessage, mid)
                m.status, m.receipt, m.sent_at, m.attempts = MessageStatus.ACCEPTED, receipt, utcnow(), m.attempts + 1
            if progress:
                progress("messages", i, len(todo))

    def _refused(self, s: Session, m: UpwardMessage, code: str, reason: str) -> None:
        m.status, m.error_code, m.last_error, m.attempts = MessageStatus.REFUSED, code, reason[:2000], m.attempts + 1
        handler = self.dispatch.refusals.get(m.kind)
        if handler is not None:
            handler(self.runtime.context(s), m, code, reason)

    def _pull(self, stats: RoundStats, progress: Progress | None) -> None:
        inbox_pull.pull(self, stats)
