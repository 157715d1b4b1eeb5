"""Batches: a province's signed unit of change.

A **batch file** is UTF-8 text, lines ending in ``\\n`` (no ``\\r``, no empty lines):

* line 1: the DSSE envelope (canonical JSON) whose payload is the **batch header**, payload type
  ``application/vnd.tmis.batch-header.v1+json``, signed once per batch with the province's Ed25519 key;
* lines 2…n+1: the ``n`` core records, each in canonical JSON, in version order.

Header (canonical JSON)::

    {"protocol": "tmis-sync/1", "type": "batch", "province": "44", "seq": 12,
     "prev_batch_hash": <hex of batch 11's hash, null for seq 1>, "created_at": "2026-11-22T08:00:00Z",
     "schema_version": <catalogue version>, "version_from": 1201, "version_to": 1300,
     "record_count": 100, "records_root": <hex Merkle root of the record leaf hashes>,
     "log_origin": "tmis.moe.edu.cn/acceptance-log/v1"}

The signature covers the header, and the header commits to every record through ``records_root`` (an
RFC 6962 tree over ``leaf_hash(record bytes)``), so a single record can be proven with an inclusion proof
without the rest of the batch, and signing cost does not grow with batch size.
**batch hash** = hex SHA-256 of the header payload bytes; ``prev_batch_hash`` chains the batches.

:func:`verify_batch` checks everything that needs no state: size limits, envelope, signature by a
threshold of the province's keys in a given trust version (scope: the key must be listed for *that*
province), header schema, that every record belongs to the province, versions run ``version_from`` …
``version_to`` without gaps, the count, and the Merkle root. Sequence and chain checks need the national
node's state and live in :mod:`sync_protocol.verifier`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sync_protocol import PROTOCOL, merkle
from sync_protocol._schema import exact_keys, hex_hash, integer, string, time
from sync_protocol.canonical import canonical_bytes, format_time, parse_canonical
from sync_protocol.dsse import (
    BATCH_PAYLOAD_TYPE,
    Envelope,
    encode_envelope,
    parse_canonical_envelope,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from sync_protocol.errors import LimitExceededError, MalformedError, ProtocolError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import Signer
from sync_protocol.records import CoreRecord, parse_record, parse_record_batch, record_hash
from sync_protocol.trust import TrustMetadata

MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_RECORDS = 10_000


@dataclass(frozen=True)
class Limits:
    """Protocol limits, passed in explicitly by the node (DESIGN: limits are configuration)."""

    max_batch_bytes: int = MAX_BATCH_BYTES
    max_records: int = MAX_RECORDS
    max_record_bytes: int = 256 * 1024
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class BatchHeader:
    province: str
    seq: int
    prev_batch_hash: str | None
    created_at: dt.datetime
    schema_version: str
    version_from: int
    version_to: int
    record_count: int
    records_root: str
    log_origin: str

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "type": "batch",
            "province": self.province,
            "seq": self.seq,
            "prev_batch_hash": self.prev_batch_hash,
            "created_at": format_time(self.created_at),
            "schema_version": self.schema_version,
            "version_from": self.version_from,
            "version_to": self.version_to,
            "record_count": self.record_count,
            "records_root": self.records_root,
            "log_origin": self.log_origin,
        }


def header_from_payload(payload: bytes) -> BatchHeader:
    obj = parse_canonical(payload)
    exact_keys(
        obj,
        {
            "protocol",
            "type",
            "province",
            "seq",
            "prev_batch_hash",
            "created_at",
            "schema_version",
            "version_from",
            "version_to",
            "record_count",
            "records_root",
            "log_origin",
        },
        "batch header",
    )
    if obj["protocol"] != PROTOCOL or obj["type"] != "batch":
        raise MalformedError(f"not a {PROTOCOL} batch header")
    seq = integer(obj, "seq", "batch header", minimum=1)
    prev = hex_hash(obj, "prev_batch_hash", "batch header", nullable=True)
    if (seq == 1) != (prev is None):
        raise MalformedError("prev_batch_hash is null exactly for seq 1")
    count = integer(obj, "record_count", "batch header", minimum=1)
    vfrom = integer(obj, "version_from", "batch header", minimum=1)
    vto = integer(obj, "version_to", "batch header", minimum=1)
    if vto - vfrom + 1 != count:
        raise MalformedError("version_to − version_from + 1 must equal record_count")
    return BatchHeader(
        province=check_province(obj["province"], "batch header province"),
        seq=seq,
        prev_batch_hash=prev,
        created_at=time(obj, "created_at", "batch header"),
        schema_version=string(obj, "schema_version", "batch header", max_len=128),
        version_from=vfrom,
        version_to=vto,
        record_count=count,
        records_root=hex_hash(obj, "records_root", "batch header"),
        log_origin=string(obj, "log_origin", "batch header", max_len=200),
    )


@dataclass(frozen=True)
class BuiltBatch:
    data: bytes  # the batch file
    header: BatchHeader
    batch_hash: str


def build_batch(
    *,
    province: str,
    seq: int,
    prev_batch_hash: str | None,
    created_at: dt.datetime,
    schema_version: str,
    log_origin: str,
    records: Sequence[CoreRecord],
    signer: Signer,
) -> BuiltBatch:
    """Build and sign a batch file. Records must be the province's, in consecutive version order."""
    if not records:
        raise MalformedError("a batch has at least one record")
    lines = [r.to_bytes() for r in records]
    for b in lines:  # what we send must pass our own parser
        parse_record(b)
    return assemble_batch(
        province=province,
        seq=seq,
        prev_batch_hash=prev_batch_hash,
        created_at=created_at,
        schema_version=schema_version,
        log_origin=log_origin,
        version_from=records[0].version,
        lines=lines,
        leaves=[record_hash(b) for b in lines],
        signer=signer,
    )


def assemble_batch(
    *,
    province: str,
    seq: int,
    prev_batch_hash: str | None,
    created_at: dt.datetime,
    schema_version: str,
    log_origin: str,
    version_from: int,
    lines: Sequence[bytes],
    leaves: Sequence[bytes],
    signer: Signer,
) -> BuiltBatch:
    """Sign a batch file from record lines already known to be canonical, valid core records of ``province``
    with versions ``version_from, version_from + 1, …`` and their leaf hashes (the provincial outbox stores both,
    checked when the entry was written): the Merkle root over ``leaves``, the header, the signature, and the
    lines joined — nothing parsed or encoded again. The receiver verifies every byte (:func:`verify_batch`)."""
    if not lines or len(lines) != len(leaves):
        raise MalformedError("a batch has at least one record, and one leaf hash per record")
    header = BatchHeader(
        province,
        seq,
        prev_batch_hash,
        created_at,
        schema_version,
        version_from,
        version_from + len(lines) - 1,
        len(lines),
        merkle.root(leaves).hex(),
        log_origin,
    )
    payload = canonical_bytes(header.to_json())
    header_from_payload(payload)
    env = encode_envelope(sign_envelope(payload, BATCH_PAYLOAD_TYPE, [signer]))
    data = b"\n".join([env, *lines]) + b"\n"
    return BuiltBatch(data, header, hashlib.sha256(payload).hexdigest())


@dataclass(frozen=True)
class VerifiedBatch:
    header: BatchHeader
    batch_hash: str
    envelope: bytes
    records: tuple[CoreRecord, ...]
    record_lines: tuple[bytes, ...]
    signer_keyids: frozenset[str]


def split_batch_file(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, list[bytes]]:
    """Split a batch file into its envelope line and record lines (size and framing checks only)."""
    if len(data) > limits.max_batch_bytes:
        raise LimitExceededError(f"batch larger than {limits.max_batch_bytes} bytes", size=len(data))
    if not data.endswith(b"\n") or b"\r" in data:
        raise MalformedError("a batch file is lines ending in \\n (no \\r)")
    count = data.count(b"\n") - 1
    if count > limits.max_records:
        raise LimitExceededError(f"batch has more than {limits.max_records} records", count=count)
    if data.startswith(b"\n") or b"\n\n" in data:
        raise MalformedError("a batch file has no empty lines")
    lines = data[:-1].split(b"\n")
    return lines[0], lines[1:]


def read_header(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Envelope, BatchHeader]:
    """The envelope and the *unverified* header of a batch file (for routing and reports only). Reads the first
    line only; :func:`verify_batch` checks the framing of the rest."""
    if len(data) > limits.max_batch_bytes:
        raise LimitExceededError(f"batch larger than {limits.max_batch_bytes} bytes", size=len(data))
    end = data.find(b"\n")
    if end < 1 or b"\r" in data[:end]:
        raise MalformedError("a batch file is lines ending in \\n (no \\r), the first one the envelope")
    env_line = data[:end]
    env = parse_envelope(env_line)
    return env, header_from_payload(env.payload)


def _parse_each(lines: Sequence[bytes], province: str, header: BatchHeader, limits: Limits) -> list[CoreRecord]:
    """Parse and check the records line by line; raises for the first bad one, with its ``index``."""
    records = []
    for i, line in enumerate(lines):
        try:
            rec = parse_record(line, limits.max_record_bytes)
        except ProtocolError as e:
            e.details.update(index=i, seq=header.seq)
            e.message = f"record {i}: {e.message}"
            raise
        if rec.province != province:
            raise MalformedError(f"record {i} belongs to province {rec.province}", index=i, seq=header.seq)
        if rec.version != header.version_from + i:
            raise MalformedError(
                f"record {i} has version {rec.version}, expected {header.version_from + i}", index=i, seq=header.seq
            )
        records.append(rec)
    return records


def verify_batch(data: bytes, trust: TrustMetadata, province: str, limits: Limits = DEFAULT_LIMITS) -> VerifiedBatch:
    """Verify a batch file for ``province`` under ``trust`` (stateless checks; see module docstring).

    Raises:
        LimitExceededError, MalformedError, SignatureError, KeyUntrustedError: naming what failed; for a
        record, ``details`` has its ``index`` (0-based line after the envelope).
    """
    check_province(province)
    env_line, record_lines = split_batch_file(data, limits)
    env = parse_canonical_envelope(env_line)
    keyset = trust.province_keys(province)
    signers = verify_envelope(env, BATCH_PAYLOAD_TYPE, keyset.keys, keyset.threshold)
    header = header_from_payload(env.payload)  # parse only the verified bytes
    if header.province != province:
        from sync_protocol.errors import KeyUntrustedError

        raise KeyUntrustedError(
            f"batch for province {header.province} signed with keys of province {province}",
            claimed=header.province,
            province=province,
        )
    if header.record_count != len(record_lines):
        raise MalformedError(f"header says {header.record_count} records, file has {len(record_lines)}", seq=header.seq)
    records = parse_record_batch(record_lines, limits.max_record_bytes)
    if (
        records is None
        or any(r.province != province for r in records)
        or [r.version for r in records] != list(range(header.version_from, header.version_from + len(records)))
    ):
        records = _parse_each(record_lines, province, header, limits)  # names the first bad record
    hashes = list(map(record_hash, record_lines))
    if merkle.root(hashes).hex() != header.records_root:
        raise MalformedError("records_root does not match the records", seq=header.seq)
    return VerifiedBatch(
        header, hashlib.sha256(env.payload).hexdigest(), env_line, tuple(records), tuple(record_lines), signers
    )
