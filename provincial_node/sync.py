"""Sync rounds of a provincial node (DESIGN §6.7): build batches from the outbox, push them in order,
verify the receipts, then pull and process the inbox.

Resumable after a crash at any point, with nothing lost or applied twice:

* building a batch marks its outbox entries and stores the batch file in one transaction; a crash before
  the commit leaves the entries for the next round, a crash after leaves a built batch that will be sent;
* pushing is idempotent: the national node answers an identical resend with the same receipt, so a batch
  whose receipt was lost is simply sent again; a batch is marked accepted only after its receipt verified
  (signed checkpoint of the trusted log key, inclusion of a leaf naming exactly this batch hash);
* transfer messages (:mod:`provincial_node.services.crossprovince`) are pushed after the batches, in the
  order they were written, and marked sent only after their receipt verified;
* inbox messages are stored only after verification, strictly in sequence, then acknowledged; a message
  pulled twice is recognised and skipped. A transfer message is applied in the transaction that stores it,
  so its effect happens exactly once.

Network errors and 5xx are retried with exponential backoff and jitter; a record the national node refuses
is parked and reported (``parked_record``) and never blocks the following batches. Every round is recorded
(start, end, status, batches, records, bytes, per-phase timings, errors).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from common.catalogue import Catalogue
from common.db import utcnow
from common.errors import ConflictError, ErrorCode, TmisError, TransportError
from common.transport import Transport
from provincial_node.models import (
    InboxReceived,
    OutboxEntry,
    ParkedRecord,
    SyncBatch,
    SyncRound,
    TrustDoc,
    UpwardMessage,
)
from provincial_node.services import crossprovince, outbox
from sync_protocol.batch import build_batch
from sync_protocol.canonical import canonical_bytes
from sync_protocol.dsse import encode_envelope, envelope_from_json
from sync_protocol.errors import AlreadyAcceptedError, ProtocolError
from sync_protocol.inbox import accept_inbox_message
from sync_protocol.keys import Signer
from sync_protocol.log import verify_receipt
from sync_protocol.records import record_from_json
from sync_protocol.request_auth import sign_request
from sync_protocol.transfer import sign_transfer_message
from sync_protocol.trust import TrustMetadata, verify_trust_chain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncSettings:
    province: str
    batch_size: int = 1000
    push_window: int = 2  # batch requests in flight during a push (1 = strictly one at a time)
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class SyncError(TmisError):
    http_status = 502


def trust_chain(session: Session) -> list[TrustMetadata]:
    docs = list(session.scalars(select(TrustDoc.envelope).order_by(TrustDoc.version)))
    if not docs:
        raise ConflictError("the node is not enrolled: run `tmis province enrol`")
    return verify_trust_chain(docs)


def store_trust(session: Session, documents: list[bytes]) -> TrustMetadata:
    """Verify and store trust versions: the first enrolment pins version 1 (trust on first use: compare
    the root key ids with the ministry's published ones); later ones must extend the stored chain. A version
    heard of again is skipped; a different document under a known version is refused."""
    from sync_protocol.dsse import parse_envelope
    from sync_protocol.errors import TrustError
    from sync_protocol.trust import trust_from_payload

    known = {k.version: k.envelope for k in session.scalars(select(TrustDoc).order_by(TrustDoc.version))}
    fresh = []
    for doc in documents:
        env = parse_envelope(doc)
        version = trust_from_payload(env.payload, doc).version
        if version in known:
            if parse_envelope(known[version]).payload != env.payload:
                raise TrustError(f"a different trust document for known version {version}", version=version)
            continue
        fresh.append(doc)
    chain = verify_trust_chain([*known.values(), *fresh])
    for t in chain:
        if t.version not in known:
            session.add(TrustDoc(version=t.version, envelope=t.envelope))
            known[t.version] = t.envelope
    return chain[-1]


class SyncClient:
    def __init__(
        self,
        factory: sessionmaker[Session],
        transport: Transport,
        signer: Signer,
        catalogue: Catalogue,
        settings: SyncSettings,
        schema_version: str | None = None,
    ) -> None:
        self.factory = factory
        self.transport = transport
        self.signer = signer
        self.catalogue = catalogue
        self.settings = settings
        self.schema_version = schema_version or catalogue.version
        self._verified: TrustMetadata | None = None

    # ------------------------------------------------------------------------------------------ transport
    def _call(self, method: str, path: str, body: bytes = b"", signed: bool = True) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            headers = {"Content-Type": "application/json"}
            if signed:
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
                if attempt >= self.settings.max_attempts or not e.details.get("retryable"):
                    raise
                delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
                logger.warning("%s %s failed (%s); retry %d in %.1fs", method, path, e, attempt, delay)
                self.settings.sleep(delay)

    # ----------------------------------------------------------------------------------------------- enrol
    def enrol(self, token: str) -> TrustMetadata:
        import base64

        body = json.dumps(
            {
                "province": self.settings.province,
                "token": token,
                "public_key": base64.b64encode(self.signer.public.raw).decode(),
            }
        ).encode()
        payload = self._call("POST", "/api/v1/enrol", body, signed=False)
        docs = [encode_envelope(envelope_from_json(d)) for d in payload["trust"]]
        with self.factory.begin() as s:
            trust = store_trust(s, docs)
        if self.signer.keyid not in trust.province_keys(self.settings.province).keys:
            raise SyncError("the national node did not list this node's key for the province")
        return trust

    # ----------------------------------------------------------------------------------------------- round
    def run_round(self, trigger: str = "cli", progress: Callable[[str, int, int], None] | None = None) -> SyncRound:
        with self.factory.begin() as s:
            rnd = SyncRound(trigger=trigger)
            s.add(rnd)
            s.flush()
            round_id = rnd.id
        stats: dict[str, Any] = {
            "batches": 0,
            "records": 0,
            "bytes_sent": 0,
            "messages": 0,
            "timings": {},
            "errors": [],
        }
        status = "ok"
        phases = (
            ("build", self._build),
            ("push", self._push),
            ("messages", self._push_messages),
            ("pull", self._pull),
            ("answers", self._push_messages),  # what processing the inbox queued (automatic answers, files)
        )
        for phase, fn in phases:
            started = time.monotonic()
            try:
                fn(stats, progress)
            except (TmisError, ProtocolError) as e:
                status = "failed" if phase in ("build", "push") else "partial"
                stats["errors"].append(
                    {
                        "phase": phase,
                        "code": str(getattr(e, "code", "")),
                        "message": str(e),
                        "details": json.loads(json.dumps(getattr(e, "details", {}), default=str)),
                    }
                )
                stats["timings"][phase] = round(time.monotonic() - started, 3)
                if phase in ("build", "push"):
                    break
            stats["timings"][phase] = round(time.monotonic() - started, 3)
        if status == "ok" and stats["errors"]:
            status = "partial"  # e.g. a transfer message the national node refused (listed in errors)
        with self.factory.begin() as s:
            rnd = s.get(SyncRound, round_id)
            rnd.finished_at, rnd.status = utcnow(), status
            for k in ("batches", "records", "bytes_sent", "messages", "timings", "errors"):
                setattr(rnd, k, stats[k])
        with self.factory() as s:
            return s.get(SyncRound, round_id)

    def _build(self, stats: dict[str, Any], progress: Callable[[str, int, int], None] | None) -> None:
        while True:
            with self.factory.begin() as s:
                entries = outbox.pending_records(s, self.settings.batch_size)
                if not entries:
                    return
                last = s.scalar(select(SyncBatch).order_by(SyncBatch.seq.desc()).limit(1))
                seq = (last.seq if last else 0) + 1
                records = [record_from_json(record) for _version, record in entries]
                built = build_batch(
                    province=self.settings.province,
                    seq=seq,
                    prev_batch_hash=last.batch_hash if last else None,
                    created_at=utcnow(),
                    schema_version=self.schema_version,
                    log_origin=self._trust(s).log_origin,
                    records=records,
                    signer=self.signer,
                )
                outbox.mark_batched(s, records[0].version, records[-1].version, seq)
                s.add(
                    SyncBatch(
                        seq=seq,
                        batch_hash=built.batch_hash,
                        data=built.data,
                        version_from=records[0].version,
                        version_to=records[-1].version,
                    )
                )

    def _trust(self, s: Session) -> TrustMetadata:
        """The newest verified trust version. Stored versions never change (``store_trust`` refuses a
        different document under a known version), so the chain is verified again only when it grew."""
        newest = s.scalar(select(func.max(TrustDoc.version)))
        if self._verified is None or self._verified.version != newest:
            self._verified = trust_chain(s)[-1]
        return self._verified

    def _push(self, stats: dict[str, Any], progress: Callable[[str, int, int], None] | None) -> None:
        """Send the built batches in order, up to ``push_window`` requests in flight: batch n + 1 travels and
        is verified by the national node while batch n is applied. Receipts are checked and stored strictly
        in sequence. A batch that reached the national node before its predecessor was accepted is refused
        as a gap; it is simply sent again once the predecessor's receipt is in."""
        with self.factory() as s:
            todo = list(s.scalars(select(SyncBatch.seq).where(SyncBatch.status == "built").order_by(SyncBatch.seq)))
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
                            progress("push", stats["batches"], len(todo))
            finally:
                for *_rest, fut in pending:  # a failure stops the round: do not wait for answers we will not use
                    fut.cancel()

    def _load_batch(self, seq: int) -> tuple[bytes, str, int]:
        with self.factory() as s:
            batch = s.get(SyncBatch, seq)
            return batch.data, batch.batch_hash, batch.version_to - batch.version_from + 1

    def _send_batch(self, data: bytes) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/provinces/{self.settings.province}/batches", data)

    def _settle(self, item: tuple[int, bytes, str, int, Future[dict[str, Any]]], stats: dict[str, Any]) -> None:
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
            trust = self._trust(s)
            receipt = canonical_bytes(payload["receipt"])
            r, _cp = verify_receipt(receipt, origin=trust.log_origin, log_keys=trust.log_keys)
            if r.leaf.get("batch_hash") != batch_hash or r.leaf.get("seq") != seq:
                raise SyncError("the receipt is for another batch", details={"seq": seq})
            b = s.get(SyncBatch, seq)
            b.status, b.receipt, b.accepted_at, b.attempts = "accepted", receipt, utcnow(), b.attempts + 1
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
        stats["batches"] += 1
        stats["records"] += count
        stats["bytes_sent"] += len(data)

    def _push_messages(self, stats: dict[str, Any], progress: Callable[[str, int, int], None] | None) -> None:
        """Push pending transfer messages in the order they were written. A message the national node refuses
        (4xx with a protocol code) is marked refused and noted on its transfer; network errors stop the phase
        and the message is sent again next round (an identical resend gets the stored receipt)."""
        with self.factory() as s:
            todo = [m.id for m in crossprovince.pending_messages(s)]
        for i, mid in enumerate(todo, start=1):
            with self.factory() as s:
                m = s.get(UpwardMessage, mid)
                data, message_hash = sign_transfer_message(m.payload, self.signer), m.message_hash
            try:
                payload = self._call("POST", f"/api/v1/provinces/{self.settings.province}/transfers", data)
            except SyncError as e:
                if not 400 <= int(e.details.get("status", 0)) < 500:
                    raise
                with self.factory.begin() as s:
                    crossprovince.refused(s, s.get(UpwardMessage, mid), str(e.code), str(e), utcnow())
                stats["errors"].append({"phase": "messages", "code": str(e.code), "message": str(e), "details": {}})
                continue
            with self.factory.begin() as s:
                trust = self._trust(s)
                receipt = canonical_bytes(payload["receipt"])
                r, _cp = verify_receipt(receipt, origin=trust.log_origin, log_keys=trust.log_keys)
                if r.leaf.get("message_hash") != message_hash:
                    raise SyncError("the receipt is for another message", details={"message": mid})
                m = s.get(UpwardMessage, mid)
                m.status, m.receipt, m.sent_at, m.attempts = "accepted", receipt, utcnow(), m.attempts + 1
            if progress:
                progress("messages", i, len(todo))

    def _pull(self, stats: dict[str, Any], progress: Callable[[str, int, int], None] | None) -> None:
        while True:
            with self.factory() as s:
                last = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
            payload = self._call("GET", f"/api/v1/provinces/{self.settings.province}/inbox?after={last}")
            messages = payload.get("messages", [])
            if not messages:
                return
            fresh = 0
            for m in messages:
                data = encode_envelope(envelope_from_json(m))
                with self.factory.begin() as s:
                    trust = self._trust(s)
                    seen = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
                    try:
                        msg = accept_inbox_message(
                            data,
                            trust=trust,
                            province=self.settings.province,
                            last_seq=seen,
                            stored_hash=lambda q: s.scalar(
                                select(InboxReceived.message_hash).where(InboxReceived.seq == q)
                            ),
                        )
                    except AlreadyAcceptedError:
                        continue
                    rec = InboxReceived(
                        seq=msg.seq, kind=msg.kind, message_hash=msg.message_hash, envelope=data, body=msg.body
                    )
                    s.add(rec)
                    if msg.kind == "trust_update":
                        store_trust(s, [encode_envelope(envelope_from_json(msg.body["envelope"]))])
                    elif msg.kind.startswith("transfer_"):
                        self._process(s, rec, msg)
                    if rec.error is None:
                        rec.processed_at = utcnow()
                stats["messages"] += 1
                fresh += 1
            with self.factory() as s:
                top = s.scalar(select(func.coalesce(func.max(InboxReceived.seq), 0)))
            self._call(
                "POST", f"/api/v1/provinces/{self.settings.province}/inbox/ack", json.dumps({"seq": top}).encode()
            )
            if not fresh:
                return  # only messages processed before (a re-delivery): nothing more to pull

    def _process(self, s: Session, rec: InboxReceived, msg: Any) -> None:
        """Apply a transfer message in the transaction that stores it (exactly once). If it cannot be applied,
        the message is kept with the reason (``sync status`` counts it) and the inbox moves on."""
        try:
            with s.begin_nested():
                crossprovince.process(s, self.catalogue, self.settings.province, msg, utcnow())
        except (TmisError, ProtocolError, SQLAlchemyError) as e:
            rec.error = f"{type(e).__name__}: {e}"[:2000]
            logger.error("inbox message %s (%s) could not be applied: %s", msg.seq, msg.kind, e)


def last_rounds(session: Session, limit: int = 20) -> list[SyncRound]:
    return list(session.scalars(select(SyncRound).order_by(SyncRound.id.desc()).limit(limit)))


def status(session: Session) -> dict[str, Any]:
    pending = session.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.batch_seq.is_(None)))
    unsent = session.scalar(select(func.count()).select_from(SyncBatch).where(SyncBatch.status != "accepted"))
    last = session.scalar(
        select(SyncBatch).where(SyncBatch.status == "accepted").order_by(SyncBatch.seq.desc()).limit(1)
    )
    parked = session.scalar(select(func.count()).select_from(ParkedRecord).where(ParkedRecord.resolved_at.is_(None)))
    trust = session.scalar(select(func.max(TrustDoc.version)))
    return {
        "outbox_pending": pending,
        "transfer_messages_pending": session.scalar(
            select(func.count()).select_from(UpwardMessage).where(UpwardMessage.status == "pending")
        ),
        "inbox_unprocessed": session.scalar(
            select(func.count()).select_from(InboxReceived).where(InboxReceived.error.is_not(None))
        ),
        "batches_unsent": unsent,
        "last_accepted_seq": last.seq if last else 0,
        "parked_records": parked,
        "trust_version": trust,
        "inbox_received": session.scalar(select(func.count()).select_from(InboxReceived)),
    }
