"""A deterministic, in-memory federation for tests, golden vectors and examples (python-tuf's
``RepositorySimulator`` idea): fixed-seed keys, trust metadata, provinces that build batches, and a
national side that runs the real :func:`~sync_protocol.verifier.accept_batch` and a :class:`MemoryLog`.

**The keys here are derived from public names: never use them outside tests.** Misbehaviour is produced
by the tests themselves from the bytes this simulator returns (tamper, replay, reorder, re-sign).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from stdnum.iso7064 import mod_11_2

from sync_protocol.batch import DEFAULT_LIMITS, BuiltBatch, Limits, build_batch
from sync_protocol.errors import AlreadyAcceptedError
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.keys import Signer
from sync_protocol.log import MemoryLog, Receipt, batch_leaf, trust_leaf
from sync_protocol.records import CoreRecord
from sync_protocol.trust import TrustMetadata, build_trust, load_pinned_trust, update_trust
from sync_protocol.verifier import AcceptedBatch, ProvinceState, accept_batch

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LOG_ORIGIN = "tmis.example/acceptance-log/v1"
SCHEMA_VERSION = "test-catalogue-1"
WITHHELD = ("JBDY.JBGZ", "JBXX.LXDH", "SDXX.SDKHJLM")


def fixed_signer(name: str) -> Signer:
    """A fixed Ed25519 key derived from ``name`` (public knowledge: tests only)."""
    return Signer.from_seed(hashlib.sha256(b"tmis public test key: " + name.encode()).digest())


def sample_record(
    province: str, version: int, sequence: int | None = None, *, op: str = "upsert", to_province: str | None = None
) -> CoreRecord:
    n = sequence if sequence is not None else version
    first17 = f"{province}0106{1970 + n % 30}0101{n % 1000:03d}"
    fields: dict = {
        "JBXX": {
            "XM": f"教师{n}",
            "XBM": "1" if n % 2 else "2",
            "SFZJLXM": "1",
            "SFZJH": first17 + mod_11_2.calc_check_digit(first17),
            "CSRQ": f"{1970 + n % 30}-01-01",
            "JZGLBM": "11",
            "RYZTM": "100",
        },
        "GWPR": [{"GWLBM": "1", "GWDJM": "110", "PRKSNY": "2016-01"}],
    }
    if op == "status_change":
        fields = {"JBXX": {"RYZTM": "301"}}
    elif op == "transfer_out":
        fields = {}
    return CoreRecord(make_teacher_number(province, n), province, version, op, fields, WITHHELD, to_province)


@dataclass
class SimProvince:
    code: str
    signer: Signer
    seq: int = 0
    version: int = 0
    last_hash: str | None = None
    batches: list[BuiltBatch] = field(default_factory=list)

    def next_batch(
        self,
        n_records: int = 3,
        *,
        created_at: dt.datetime | None = None,
        log_origin: str = LOG_ORIGIN,
        signer: Signer | None = None,
        records: list[CoreRecord] | None = None,
    ) -> BuiltBatch:
        if records is None:
            records = [sample_record(self.code, self.version + i + 1) for i in range(n_records)]
        built = build_batch(
            province=self.code,
            seq=self.seq + 1,
            prev_batch_hash=self.last_hash,
            created_at=created_at or EPOCH + dt.timedelta(hours=self.seq + 1),
            schema_version=SCHEMA_VERSION,
            log_origin=log_origin,
            records=records,
            signer=signer or self.signer,
        )
        self.seq += 1
        self.version = records[-1].version
        self.last_hash = built.batch_hash
        self.batches.append(built)
        return built


class SimFederation:
    """Root keys (2 of 3), a log key, a message key, and provinces 11 and 44 (plus any added)."""

    def __init__(self, provinces: tuple[str, ...] = ("11", "44")) -> None:
        self.roots = [fixed_signer(f"root-{i}") for i in range(3)]
        self.log_signer = fixed_signer("log")
        self.message_signer = fixed_signer("messages")
        self.provinces = {p: SimProvince(p, fixed_signer(f"province-{p}")) for p in provinces}
        self.trust_docs: list[bytes] = []
        self.trust: TrustMetadata = load_pinned_trust(self.publish_trust())
        self.log = MemoryLog(LOG_ORIGIN)
        self.state = {p: ProvinceState(p) for p in provinces}
        self.accepted: dict[tuple[str, int], str] = {}
        self.receipts: dict[tuple[str, int], Receipt] = {}
        self.log.append(trust_leaf(version=1, trust_hash=self.trust.hash, accepted_at=EPOCH))

    def publish_trust(
        self,
        *,
        province_keys: dict[str, list[Signer]] | None = None,
        roots: list[Signer] | None = None,
        signers: list[Signer] | None = None,
        version: int | None = None,
        expires: dt.datetime | None = None,
        root_threshold: int = 2,
        thresholds: dict[str, int] | None = None,
    ) -> bytes:
        """Build (and remember) a trust version. ``province_keys`` defaults to each province's signer."""
        roots = roots or self.roots
        pk = province_keys or {p: [s.signer] for p, s in self.provinces.items()}
        v = version or len(self.trust_docs) + 1
        doc = build_trust(
            version=v,
            issued_at=EPOCH + dt.timedelta(days=v - 1),
            expires=expires or EPOCH + dt.timedelta(days=365 + v),
            root_keys=[r.public for r in roots],
            root_threshold=root_threshold,
            log_origin=LOG_ORIGIN,
            log_keys=[self.log_signer.public],
            message_keys=[self.message_signer.public],
            provinces={p: ((thresholds or {}).get(p, 1), [s.public for s in keys]) for p, keys in pk.items()},
            signers=signers if signers is not None else (self.roots[:2] + roots[:2]),
        )
        self.trust_docs.append(doc)
        return doc

    def rotate_trust(self, doc: bytes, at: dt.datetime) -> TrustMetadata:
        self.trust = update_trust(self.trust, doc, now=at)
        self.log.append(trust_leaf(version=self.trust.version, trust_hash=self.trust.hash, accepted_at=at))
        return self.trust

    def submit(
        self, province: str, data: bytes, *, now: dt.datetime | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> Receipt:
        """The national intake: verify, then (only then) log and remember; identical resend → same receipt."""
        now = now or EPOCH + dt.timedelta(days=1)
        try:
            acc: AcceptedBatch = accept_batch(
                data,
                province=province,
                trust=self.trust,
                state=self.state[province],
                stored_batch_hash=lambda s: self.accepted.get((province, s)),
                now=now,
                limits=limits,
            )
        except AlreadyAcceptedError as e:
            return self.receipts[(province, e.details["seq"])]
        h = acc.batch.header
        index = self.log.append(
            batch_leaf(
                province=province,
                seq=h.seq,
                batch_hash=acc.batch.batch_hash,
                accepted_at=now,
                trust_version=acc.trust_version,
            )
        )
        self.state[province] = acc.new_state
        self.accepted[(province, h.seq)] = acc.batch.batch_hash
        receipt = self.log.receipt(index, self.log_signer)
        self.receipts[(province, h.seq)] = receipt
        return receipt
