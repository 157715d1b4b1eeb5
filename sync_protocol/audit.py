"""Offline audit of exported tmis-sync/1 files (no network, no database).

Every function returns an :class:`AuditReport`: a list of findings, each naming the check, the exact
subject (file, province/seq, record index) and the reason, so an auditor can act on it. Nothing here
raises for a verification failure; malformed *inputs to the auditor itself* (an unreadable trust chain)
are findings too.

Trust: the auditor is given trust documents; the lowest version is the pinned root unless a pinned file
is named. Which trust version judges a batch comes from its log position (the ``trust_version`` in its
log leaf or receipt); without one the newest version is used and the report says so.

The **audit bundle** (what ``tmis national export`` writes) is laid out as :mod:`sync_protocol.bundle` says.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync_protocol import PROTOCOL, bundle, merkle
from sync_protocol._schema import exact_keys, integer
from sync_protocol.batch import DEFAULT_LIMITS, BatchHeader, read_header, verify_batch
from sync_protocol.canonical import canonical_bytes, format_time, parse_json, parse_time
from sync_protocol.dsse import BATCH_PAYLOAD_TYPE, Envelope, envelope_from_json, verify_envelope
from sync_protocol.errors import MalformedError, ProtocolError
from sync_protocol.identifiers import PROVINCE_CODES
from sync_protocol.log import (
    leaf_hash_of,
    leaves_from_lines,
    parse_consistency_proof,
    verify_checkpoint,
    verify_checkpoint_consistency,
    verify_receipt,
)
from sync_protocol.records import parse_record, record_hash
from sync_protocol.trust import TrustMetadata, verify_trust_chain

SPEC = "docs/protocol.md"


@dataclass
class Finding:
    ok: bool
    check: str
    subject: str
    reason: str = ""
    code: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "check": self.check,
            "subject": self.subject,
            "reason": self.reason,
            "code": self.code,
            "details": self.details,
        }


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def good(self, check: str, subject: str, reason: str = "", **details: Any) -> None:
        self.findings.append(Finding(True, check, subject, reason, "", details))

    def bad(self, check: str, subject: str, reason: str, code: str = "", **details: Any) -> None:
        self.findings.append(Finding(False, check, subject, reason, code, details))

    def failed(self, check: str, subject: str, e: ProtocolError) -> None:
        self.bad(check, subject, e.message, e.code, **{k: str(v) for k, v in e.details.items()})

    def extend(self, other: AuditReport) -> None:
        self.findings.extend(other.findings)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "spec": SPEC, "findings": [f.to_json() for f in self.findings]}


# ------------------------------------------------------------------------------------------------ trust


def load_trust(documents: Sequence[bytes], pinned: bytes | None = None) -> tuple[list[TrustMetadata], AuditReport]:
    report = AuditReport()
    try:
        chain = verify_trust_chain(documents, pinned=pinned)
    except ProtocolError as e:
        report.failed("trust-chain", "trust", e)
        return [], report
    report.good("trust-chain", "trust", f"versions {chain[0].version}..{chain[-1].version} chain to the pinned root")
    return chain, report


def _trust_at(chain: Sequence[TrustMetadata], version: int | None) -> TrustMetadata | None:
    if version is None:
        return chain[-1] if chain else None
    for t in chain:
        if t.version == version:
            return t
    return None


def _all_log_keys(chain: Iterable[TrustMetadata]) -> dict:
    keys: dict = {}
    for t in chain:
        keys.update(t.log_keys)
    return keys


# ------------------------------------------------------------------------------------------------ batches


def audit_batch(
    data: bytes,
    chain: Sequence[TrustMetadata],
    *,
    name: str = "batch",
    trust_version: int | None = None,
    logged_hash: str | None = None,
) -> AuditReport:
    """One batch: signature chain to the trusted root, schema, every record hash, the Merkle root.

    ``trust_version`` is the batch's log position (the trust version its log leaf names); ``logged_hash`` the
    batch hash that leaf names, which the file must have. Without a position the newest version judges, and the
    finding says so: a batch signed by a key rotated out since then fails there, and the reason names the
    way to give its position (a bundle, or its receipt)."""
    report = AuditReport()
    try:
        env, header = read_header(data)
    except ProtocolError as e:
        report.failed("batch", name, e)
        return report
    subject = f"{name} (province {header.province} seq {header.seq})"
    trust = _trust_at(chain, trust_version)
    if trust is None:
        report.bad("batch", subject, f"trust version {trust_version} is not in the given trust chain")
        return report
    if logged_hash is not None and hashlib.sha256(env.payload).hexdigest() != logged_hash:
        report.bad(
            "batch",
            subject,
            "the acceptance log holds another batch for this sequence (the file is not the logged batch)",
            "protocol_equivocation",
            logged=logged_hash,
        )
        return report
    try:
        vb = verify_batch(data, trust, header.province)
    except ProtocolError as e:
        where = f" record {e.details['index']}" if "index" in e.details else ""
        if trust_version is None and e.code in ("protocol_signature_invalid", "protocol_key_untrusted"):
            e.message += (
                f" (judged under the newest trust version {trust.version}: no log position was found for this "
                "batch; audit it inside its bundle, or give --bundle DIR or --receipts DIR)"
            )
        report.failed("batch", subject + where, e)
        return report
    report.good(
        "batch",
        subject,
        f"signature valid under trust version {trust.version}"
        f"{' (its log position)' if trust_version else ' (newest: no log position found)'}; "
        f"{vb.header.record_count} records match records_root",
        batch_hash=vb.batch_hash,
    )
    return report


# ------------------------------------------------------------------------------------- log positions


@dataclass
class LogPositions:
    """Where batches are in the acceptance log: (province, seq) → (trust version in force, logged batch hash),
    from a bundle's log verified against its signed checkpoint, or from verified receipts."""

    at: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)

    def versions(self) -> dict[tuple[str, int], int]:
        return {k: v for k, (v, _h) in self.at.items()}

    def get(self, province: str, seq: int) -> tuple[int | None, str | None]:
        v, h = self.at.get((province, seq), (None, None))
        return v, h


def positions_from_leaves(leaves: Sequence[dict]) -> LogPositions:
    pos = LogPositions()
    for leaf in leaves:
        if leaf["type"] == "batch":
            pos.at[(leaf["province"], leaf["seq"])] = (leaf["trust_version"], leaf["batch_hash"])
    return pos


def positions_from_receipts(files: Iterable[Path], chain: Sequence[TrustMetadata], report: AuditReport) -> LogPositions:
    """Log positions named by receipts, each verified first (signed checkpoint, inclusion of its leaf)."""
    pos = LogPositions()
    if not chain:
        return pos
    for f in files:
        try:
            receipt, _cp = verify_receipt(f.read_bytes(), origin=chain[-1].log_origin, log_keys=_all_log_keys(chain))
        except (ProtocolError, OSError) as e:
            report.bad("receipt", str(f), getattr(e, "message", str(e)), getattr(e, "code", ""))
            continue
        leaf = receipt.leaf
        if leaf.get("type") == "batch":
            pos.at[(leaf["province"], leaf["seq"])] = (leaf["trust_version"], leaf["batch_hash"])
    return pos


def bundle_context(
    root: Path, pinned: bytes | None, report: AuditReport
) -> tuple[list[TrustMetadata], LogPositions] | None:
    """The trust chain and the log positions of a bundle (its log verified against its signed checkpoint)."""
    verified = _verified_log(root, pinned, report)
    if verified is None:
        return None
    chain, leaves = verified
    return chain, positions_from_leaves(leaves)


PARALLEL_MIN_BYTES = 4 * 1024 * 1024  # below this, starting worker processes costs more than it saves
_worker_chain: list[TrustMetadata] = []
BatchSource = bytes | Path  # a batch file's content, or its path (read where it is verified)
MAX_HEAD_BYTES = 1024 * 1024  # the envelope line of a batch file is a few kB


def _bytes(src: BatchSource) -> bytes:
    return src if isinstance(src, bytes) else src.read_bytes()


def _size(src: BatchSource) -> int:
    return len(src) if isinstance(src, bytes) else src.stat().st_size


def _head(src: BatchSource) -> tuple[Envelope, BatchHeader]:
    """The envelope and unverified header, reading only the first line of a file."""
    if isinstance(src, bytes):
        return read_header(src)
    if src.stat().st_size > DEFAULT_LIMITS.max_batch_bytes:
        return read_header(src.read_bytes())  # raises, naming the limit
    with src.open("rb") as fh:
        return read_header(fh.readline(MAX_HEAD_BYTES))


def _init_worker(trust_documents: list[bytes]) -> None:
    global _worker_chain
    _worker_chain = verify_trust_chain(trust_documents)  # the same chain, rebuilt in this process
    # A worker only verifies batches: each builds thousands of short-lived dicts, freed by reference counting
    # (JSON values have no cycles); collecting the young generation every 700 allocations costs about a tenth.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


Item = tuple[str, BatchSource, int | None, str | None]  # name, source, trust version, logged batch hash


def _worker_audit(item: Item) -> AuditReport:
    name, src, tv, logged = item
    return audit_batch(_bytes(src), _worker_chain, name=name, trust_version=tv, logged_hash=logged)


def _audit_batches(items: list[Item], chain: Sequence[TrustMetadata]) -> list[AuditReport]:
    """:func:`audit_batch` for each item; across CPU cores when the batches are large enough to pay for it
    (workers read files themselves, so the batches are not copied between processes). Every batch is verified
    completely either way; only the order of the work differs."""
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(items) < 2 or sum(_size(src) for _n, src, _t, _h in items) < PARALLEL_MIN_BYTES:
        return [
            audit_batch(_bytes(src), chain, name=name, trust_version=tv, logged_hash=logged)
            for name, src, tv, logged in items
        ]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=([t.envelope for t in chain],)) as ex:
        return list(ex.map(_worker_audit, items))


def audit_series(
    batches: Sequence[tuple[str, BatchSource]],
    chain: Sequence[TrustMetadata],
    positions: LogPositions | None = None,
) -> AuditReport:
    """A province's batches: each valid (judged at its log position when ``positions`` has it), gapless from 1,
    chained, versions continuous, no equivocation. A batch is given as its bytes or as the path of its file
    (then only its first line is read here)."""
    report = AuditReport()
    by_prov: dict[str, dict[int, list[tuple[str, str, BatchHeader]]]] = {}
    todo = []
    for name, src in batches:
        try:
            env, header = _head(src)
        except (ProtocolError, OSError) as e:
            if isinstance(e, OSError):
                report.bad("series", name, f"cannot read: {e.strerror or e}")
            else:
                report.failed("series", name, e)
            continue
        tv, logged = (positions or LogPositions()).get(header.province, header.seq)
        todo.append((name, src, env, header, tv, logged))
    subs = _audit_batches([(name, src, tv, logged) for name, src, _e, _h, tv, logged in todo], chain)
    for (name, _src, env, header, _tv, _logged), sub in zip(todo, subs, strict=True):
        report.extend(sub)
        if sub.ok:
            batch_hash = hashlib.sha256(env.payload).hexdigest()
            by_prov.setdefault(header.province, {}).setdefault(header.seq, []).append((name, batch_hash, header))
    for province, seqs in sorted(by_prov.items()):
        prev_hash, prev_version, good = None, 0, True
        for seq in range(1, max(seqs) + 1):
            entries = seqs.get(seq)
            if not entries:
                report.bad(
                    "series", f"province {province}", f"gap: batch {seq} is missing", "protocol_sequence_gap", seq=seq
                )
                good = False
                break
            hashes = {batch_hash: n for n, batch_hash, _h in entries}
            if len(hashes) > 1:
                report.bad(
                    "series",
                    f"province {province} seq {seq}",
                    "equivocation: two different signed batches for one sequence number",
                    "protocol_equivocation",
                    evidence=sorted(hashes.values()),
                )
                good = False
                break
            ((bh, name),) = hashes.items()
            header = entries[0][2]
            if header.prev_batch_hash != prev_hash:
                report.bad(
                    "series",
                    f"{name} (province {province} seq {seq})",
                    "prev_batch_hash does not chain to the previous batch",
                    "protocol_chain_broken",
                )
                good = False
                break
            if header.version_from != prev_version + 1:
                report.bad(
                    "series",
                    f"{name} (province {province} seq {seq})",
                    f"versions jump from {prev_version} to {header.version_from}",
                    "protocol_chain_broken",
                )
                good = False
                break
            prev_hash, prev_version = bh, header.version_to
        if good:
            report.good(
                "series",
                f"province {province}",
                f"batches 1..{max(seqs)} gapless, chained, versions 1..{prev_version} continuous, no equivocation",
            )
    return report


# ---------------------------------------------------------------------------------------- log and proofs


def audit_receipt(data: bytes, chain: Sequence[TrustMetadata], *, name: str = "receipt") -> AuditReport:
    report = AuditReport()
    if not chain:
        report.bad("receipt", name, "no trust")
        return report
    try:
        receipt, cp = verify_receipt(data, origin=chain[-1].log_origin, log_keys=_all_log_keys(chain))
    except ProtocolError as e:
        report.failed("receipt", name, e)
        return report
    report.good(
        "receipt", name, f"leaf {receipt.leaf_index} is in the signed checkpoint of size {cp.size}", leaf=receipt.leaf
    )
    return report


def audit_consistency(old_note: str, new_note: str, proof: bytes, chain: Sequence[TrustMetadata]) -> AuditReport:
    report = AuditReport()
    try:
        keys, origin = _all_log_keys(chain), chain[-1].log_origin
        old = verify_checkpoint(old_note, origin=origin, keys=keys)
        new = verify_checkpoint(new_note, origin=origin, keys=keys)
        old_size, new_size, hashes = parse_consistency_proof(proof)
        if (old_size, new_size) != (old.size, new.size):
            raise MalformedError(
                "the proof is for other sizes", proof=[old_size, new_size], checkpoints=[old.size, new.size]
            )
        verify_checkpoint_consistency(old, new, hashes)
    except (ProtocolError, IndexError) as e:
        if isinstance(e, IndexError):
            report.bad("consistency", "checkpoints", "no trust")
        else:
            report.failed("consistency", "checkpoints", e)
        return report
    report.good("consistency", "checkpoints", f"size {old.size} is a prefix of size {new.size}: append-only")
    return report


def build_record_proof(batch_data: bytes, index: int) -> bytes:
    """A file proving record ``index`` of a batch without the other records."""
    env_line, *lines = batch_data[:-1].split(b"\n")
    hashes = [record_hash(b) for b in lines]
    return canonical_bytes(
        {
            "protocol": PROTOCOL,
            "type": "record_proof",
            "envelope": parse_json(env_line),
            "record": parse_json(lines[index]),
            "index": index,
            "proof": [h.hex() for h in merkle.inclusion_proof(index, hashes)],
        }
    )


def audit_record_proof(
    data: bytes, chain: Sequence[TrustMetadata], *, name: str = "record proof", trust_version: int | None = None
) -> AuditReport:
    """One teacher's record: its batch header's signature and its inclusion under records_root."""
    from sync_protocol.batch import header_from_payload

    report = AuditReport()
    try:
        obj = parse_json(data)
        exact_keys(obj, {"protocol", "type", "envelope", "record", "index", "proof"}, "record proof")
        if obj["protocol"] != PROTOCOL or obj["type"] != "record_proof":
            raise MalformedError("not a record proof")
        env = envelope_from_json(obj["envelope"])
        trust = _trust_at(chain, trust_version)
        if trust is None:
            raise MalformedError("trust version not in the chain")
        claimed = header_from_payload(env.payload).province  # only to pick the keys; verified next
        ks = trust.province_keys(claimed)
        verify_envelope(env, BATCH_PAYLOAD_TYPE, ks.keys, ks.threshold)
        header = header_from_payload(env.payload)
        line = canonical_bytes(obj["record"])
        record = parse_record(line)
        index = integer(obj, "index", "record proof")
        proof = [bytes.fromhex(h) for h in obj["proof"]] if isinstance(obj["proof"], list) else None
        if proof is None or len(proof) > 63:
            raise MalformedError("record proof needs a list of at most 63 hashes")
        if record.province != header.province or record.version != header.version_from + index:
            raise MalformedError("record does not belong at that index of the batch")
        merkle.verify_inclusion(
            record_hash(line), index, header.record_count, proof, bytes.fromhex(header.records_root)
        )
    except (ProtocolError, ValueError) as e:
        if isinstance(e, ProtocolError):
            report.failed("record", name, e)
        else:
            report.bad("record", name, f"malformed: {e}", "protocol_malformed")
        return report
    report.good(
        "record",
        f"{name} (teacher {record.teacher_number})",
        f"record {index} is in province {header.province} batch {header.seq}, signed",
    )
    return report


# ------------------------------------------------------------------------------------------------ bundle


def _verified_log(
    root: Path, pinned: bytes | None, report: AuditReport
) -> tuple[list[TrustMetadata], list[dict]] | None:
    """The bundle's trust chain and its logged leaves (up to the signed checkpoint), or None after reporting why
    they cannot be trusted."""
    trust_docs = [p.read_bytes() for p in sorted((root / "trust").glob(bundle.TRUST_GLOB))]
    chain, tr = load_trust(trust_docs, pinned)
    report.extend(tr)
    if not chain:
        return None
    try:
        leaves = leaves_from_lines(bundle.leaves_file(root).read_bytes().splitlines())
        cp = verify_checkpoint(
            bundle.checkpoint_file(root).read_text(encoding="utf-8"),
            origin=chain[-1].log_origin,
            keys=_all_log_keys(chain),
        )
    except (ProtocolError, OSError) as e:
        report.bad("log", "log", getattr(e, "message", str(e)), getattr(e, "code", ""))
        return None
    if len(leaves) < cp.size or merkle.root([leaf_hash_of(x) for x in leaves[: cp.size]]) != cp.root:
        report.bad(
            "log",
            "log/leaves.jsonl",
            f"the leaves do not hash to the signed checkpoint root (size {cp.size})",
            "protocol_proof_invalid",
        )
        return None
    report.good("log", "log/leaves.jsonl", f"{cp.size} leaves hash to the signed checkpoint")
    return chain, leaves[: cp.size]


def audit_bundle(root: Path, *, pinned: bytes | None = None) -> AuditReport:
    """Everything in an exported bundle (layout in the module docstring)."""
    report = AuditReport()
    verified = _verified_log(root, pinned, report)
    if verified is None:
        return report
    chain, leaves = verified
    by_version = {t.version: t for t in chain}
    current_trust, trust_versions, batch_leaves = None, {}, {}
    for i, leaf in enumerate(leaves):
        if leaf["type"] == "trust":
            t = by_version.get(leaf["version"])
            if t is None or t.hash != leaf["trust_hash"]:
                report.bad("log", f"leaf {i}", f"trust leaf names version {leaf['version']} not in the trust chain")
            current_trust = leaf["version"]
            continue
        if leaf["trust_version"] != current_trust:
            report.bad(
                "log",
                f"leaf {i} ({leaf['type']} of province {leaf['province']})",
                f"judged under trust {leaf['trust_version']} but trust {current_trust} was in force",
                "protocol_key_untrusted",
            )
        if leaf["type"] == "message":
            continue  # checked by audit_messages
        key = (leaf["province"], leaf["seq"])
        trust_versions[key] = leaf["trust_version"]
        batch_leaves[key] = leaf["batch_hash"]
    batch_files = []
    present = set()
    for province_dir in sorted(p for p in (root / "batches").glob("*") if p.is_dir()):
        if province_dir.name not in PROVINCE_CODES:
            report.bad("bundle", str(province_dir), "not a province code directory")
            continue
        for f in sorted(province_dir.glob(bundle.BATCH_GLOB)):
            batch_files.append((f"batches/{province_dir.name}/{f.name}", f))  # read where it is verified
            try:
                env, h = _head(f)
            except (ProtocolError, OSError):
                continue  # reported by audit_series
            present.add((h.province, h.seq))
            logged = batch_leaves.get((h.province, h.seq))
            actual = hashlib.sha256(env.payload).hexdigest()
            if logged != actual:
                report.bad(
                    "log",
                    f"batches/{province_dir.name}/{f.name}",
                    "batch is not in the acceptance log with this hash"
                    if logged is None
                    else "the log holds a different batch for this sequence",
                    "protocol_equivocation",
                )
    missing = sorted(set(batch_leaves) - present)
    for province, seq in missing:
        report.bad("bundle", f"province {province} seq {seq}", "logged batch missing from the bundle")
    report.extend(
        audit_series(batch_files, chain, LogPositions({k: (v, batch_leaves[k]) for k, v in trust_versions.items()}))
    )
    for f in sorted((root / "receipts").glob(bundle.RECEIPT_GLOB)):
        report.extend(audit_receipt(f.read_bytes(), chain, name=str(f.relative_to(root))))
    report.extend(audit_messages(root, leaves, chain))
    return report


# ------------------------------------------------------------------------------------- transfer messages


def _message_files(root: Path, leaves: Sequence[dict]) -> list[tuple[int, dict, Path]]:
    return [
        (i, leaf, bundle.message_file(root, leaf["province"], i))
        for i, leaf in enumerate(leaves)
        if leaf["type"] == "message"
    ]


def _inbox_files(root: Path) -> list[tuple[str, int, Path]]:
    out = []
    for d in sorted(p for p in (root / "inbox").glob("*") if p.is_dir()):
        for f in sorted(d.glob(bundle.MESSAGE_GLOB)):
            if d.name in PROVINCE_CODES and f.stem.isdigit():
                out.append((d.name, int(f.stem), f))
    return out


def _verify_upward(path: Path, leaf: dict, chain: Sequence[TrustMetadata]):
    from sync_protocol.transfer import verify_transfer_message

    trust = _trust_at(chain, leaf["trust_version"])
    if trust is None:
        raise MalformedError(f"trust version {leaf['trust_version']} is not in the chain")
    msg = verify_transfer_message(path.read_bytes(), trust, leaf["province"])
    if (msg.message_hash, msg.kind, msg.transfer_id) != (leaf["message_hash"], leaf["kind"], leaf["transfer_id"]):
        raise MalformedError(
            "the message is not the one the log leaf names", logged=leaf["message_hash"], file=msg.message_hash
        )
    return msg


def _verify_inbox(path: Path, province: str, chain: Sequence[TrustMetadata]):
    from sync_protocol.inbox import verify_inbox_message

    last: ProtocolError | None = None
    for trust in reversed(chain):  # signed by a message key of some trust version
        try:
            return verify_inbox_message(path.read_bytes(), trust, province)
        except ProtocolError as e:
            last = e
    raise last or MalformedError("no trust")


def audit_messages(root: Path, leaves: Sequence[dict], chain: Sequence[TrustMetadata]) -> AuditReport:
    """Every logged transfer message is present, is the logged one and is signed by its province; every
    inbox message is signed by a national message key, addressed right and gapless per province."""
    report = AuditReport()
    logged = _message_files(root, leaves)
    for _i, leaf, path in logged:
        name = str(path.relative_to(root))
        try:
            _verify_upward(path, leaf, chain)
        except (ProtocolError, OSError) as e:
            report.bad("messages", name, getattr(e, "message", str(e)), getattr(e, "code", ""))
    if logged:
        report.good("messages", "messages/", f"{len(logged)} logged transfer messages present and signed")
    by_province: dict[str, list[int]] = {}
    for province, seq, path in _inbox_files(root):
        name = str(path.relative_to(root))
        try:
            msg = _verify_inbox(path, province, chain)
        except ProtocolError as e:
            report.failed("inbox", name, e)
            continue
        if msg.seq != seq:
            report.bad("inbox", name, f"file name says {seq}, the signed message says {msg.seq}")
        by_province.setdefault(province, []).append(msg.seq)
    for province, seqs in sorted(by_province.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            report.bad("inbox", f"inbox/{province}", "inbox sequence is not gapless from 1", "protocol_sequence_gap")
        else:
            report.good("inbox", f"inbox/{province}", f"messages 1..{len(seqs)} signed by the national node")
    return report


def audit_transfer(root: Path, transfer_id: str, *, pinned: bytes | None = None) -> tuple[AuditReport, list[dict]]:
    """The signed trail of one cross-province transfer: every province-signed message in log order (with the
    state machine replayed over it) and every inbox message the national node routed about it."""
    from sync_protocol import transfer as tr

    report = AuditReport()
    verified = _verified_log(root, pinned, report)
    if verified is None:
        return report, []
    chain, leaves = verified
    trail: list[dict] = []
    state = None
    for i, leaf, path in _message_files(root, leaves):
        if leaf["transfer_id"] != transfer_id:
            continue
        subject = f"leaf {i} ({leaf['kind']} by province {leaf['province']})"
        try:
            msg = _verify_upward(path, leaf, chain)
            now = parse_time(leaf["accepted_at"], "leaf.accepted_at")
            state = tr.start(msg) if state is None else tr.advance(state, msg, now)
        except (ProtocolError, OSError) as e:
            report.bad("transfer", subject, getattr(e, "message", str(e)), getattr(e, "code", ""))
            continue
        body = {k: v for k, v in msg.body.items() if k != "file"}
        trail.append(
            {
                "source": "log",
                "leaf_index": i,
                "accepted_at": leaf["accepted_at"],
                "signed_by": f"province {leaf['province']}",
                "kind": leaf["kind"],
                "message_hash": leaf["message_hash"],
                "body": body,
                "state_after": state.state,
                "next_step": state.next_step,
            }
        )
        report.good("transfer", subject, f"signed by province {leaf['province']}, in the log; state {state.state}")
    for province, seq, path in _inbox_files(root):
        try:
            msg = _verify_inbox(path, province, chain)
        except ProtocolError as e:
            report.failed("transfer", str(path.relative_to(root)), e)
            continue
        if msg.body.get("transfer_id") != transfer_id:
            continue
        body = {k: (f"<file: {len(v['groups'])} groups>" if k == "file" and v else v) for k, v in msg.body.items()}
        trail.append(
            {
                "source": "inbox",
                "province": province,
                "seq": seq,
                "created_at": format_time(msg.created_at),
                "signed_by": "national message key",
                "kind": msg.kind,
                "message_hash": msg.message_hash,
                "body": body,
            }
        )
        report.good(
            "transfer",
            f"inbox/{province}/{seq:08d}.msg",
            f"{msg.kind} routed to province {province}, signed by the national node",
        )
    if state is None:
        report.bad("transfer", transfer_id, "no logged message for this transfer")
    trail.sort(key=lambda e: (e.get("accepted_at") or e.get("created_at"), e["source"] != "log"))
    return report, trail
