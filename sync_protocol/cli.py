"""``tmis audit …``: offline verification of exported batches, receipts, checkpoints and bundles.

The protocol and every check are specified in docs/protocol.md. Exit status: 0 when everything holds,
1 when a check failed (each failure names the file, batch, record and reason), 2 for usage errors.
``--json`` prints ``{"ok", "spec", "findings": [{ok, check, subject, reason, code, details}]}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sync_protocol import audit as A
from sync_protocol import bundle as layout
from sync_protocol.batch import header_from_payload, read_header
from sync_protocol.canonical import parse_json
from sync_protocol.dsse import envelope_from_json
from sync_protocol.errors import ProtocolError

EPILOG = "Specification: docs/protocol.md (tmis-sync/1)."


def _trust_option(f):
    f = click.option(
        "--trust",
        "trust_paths",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="trust documents (N.trust.json) or a directory of them; the lowest version is pinned "
        "(default: the trust/ directory of the bundle the files lie in)",
    )(f)
    return click.option(
        "--pinned",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="pin this trust document instead of the lowest version given",
    )(f)


def _position_options(f):
    """Where each batch's log position (the trust version that judges its key) comes from."""
    f = click.option(
        "--bundle",
        "bundle_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="an exported bundle whose verified log gives each batch's position (default: the bundle the "
        "files lie in, if any)",
    )(f)
    return click.option(
        "--receipts",
        "receipt_paths",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="receipt files or directories of them (*.receipt.json): each verified receipt gives its batch's "
        "log position",
    )(f)


def _load_trust(paths: tuple[Path, ...], pinned: Path | None) -> tuple[list, A.AuditReport]:
    docs = []
    for p in paths:
        if p.is_dir():
            docs.extend(q.read_bytes() for q in sorted(p.glob("*.trust.json")))
        else:
            docs.append(p.read_bytes())
    return A.load_trust(docs, pinned.read_bytes() if pinned else None)


def _context(
    inputs: list[Path],
    trust_paths: tuple[Path, ...],
    pinned: Path | None,
    bundle_dir: Path | None,
    receipt_paths: tuple[Path, ...],
) -> tuple[list, A.LogPositions, A.AuditReport]:
    """The trust chain and the batches' log positions: from the bundle the inputs lie in (or ``--bundle``),
    then from receipts; ``--trust`` overrides the bundle's trust documents."""
    root = bundle_dir
    if root is None:
        root = next((r for r in (layout.find_root(p) for p in inputs) if r is not None), None)
    if not trust_paths and root is None:
        raise click.UsageError("give --trust, or audit files inside an exported bundle, or name one with --bundle")
    report, chain, positions = A.AuditReport(), [], A.LogPositions()
    if trust_paths:
        chain, tr = _load_trust(trust_paths, pinned)
        report.extend(tr)
    if root is not None:
        sub = A.AuditReport()
        found = A.bundle_context(root, pinned.read_bytes() if pinned else None, sub)
        if found is not None:
            bundle_chain, positions = found
            chain = chain or bundle_chain
        if trust_paths:  # the operator's trust decides; the bundle's log is only the positions
            sub.findings = [f for f in sub.findings if f.check != "trust-chain"]
        report.extend(sub)
    files = []
    for p in receipt_paths:
        files.extend(sorted(p.rglob("*.receipt.json")) if p.is_dir() else [p])
    for key, value in A.positions_from_receipts(files, chain, report).at.items():
        positions.at.setdefault(key, value)
    return chain, positions, report


def _emit(report: A.AuditReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        for f in report.findings:
            mark = "OK  " if f.ok else "FAIL"
            code = f" [{f.code}]" if f.code and not f.ok else ""
            click.echo(f"{mark} {f.check:<12} {f.subject}: {f.reason}{code}")
        click.echo("all checks passed" if report.ok else "AUDIT FAILED (see docs/protocol.md)")
    sys.exit(0 if report.ok else 1)


json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


@click.group(epilog=EPILOG)
def audit() -> None:
    """Offline auditor tools for tmis-sync/1 (specification: docs/protocol.md)."""


@audit.command(epilog=EPILOG)
@click.argument("batch", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-version", type=int, help="judge under this trust version instead of the batch's log position")
@_trust_option
@_position_options
@json_option
def batch(
    batch: Path, trust_version: int | None, trust_paths, pinned, bundle_dir, receipt_paths, as_json: bool
) -> None:
    """Verify one batch file at its log position: signature to the trusted root under the trust version in force
    when it was accepted, schema, every record hash, Merkle root."""
    chain, positions, report = _context([batch], trust_paths, pinned, bundle_dir, receipt_paths)
    if chain:
        data = batch.read_bytes()
        tv, logged = None, None
        try:
            _env, header = read_header(data)
            tv, logged = positions.get(header.province, header.seq)
        except ProtocolError:
            pass  # audit_batch reports the malformed file
        if trust_version is not None:
            tv, logged = trust_version, None
        report.extend(A.audit_batch(data, chain, name=str(batch), trust_version=tv, logged_hash=logged))
    _emit(report, as_json)


@audit.command(epilog=EPILOG)
@click.argument("batches", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_trust_option
@_position_options
@json_option
def series(batches, trust_paths, pinned, bundle_dir, receipt_paths, as_json: bool) -> None:
    """Verify a province's batch series, each batch at its log position: gapless from 1, chained, versions
    continuous, no equivocation."""
    chain, positions, report = _context(list(batches), trust_paths, pinned, bundle_dir, receipt_paths)
    files = []
    for p in batches:
        if p.is_dir():
            files.extend((str(q), q) for q in sorted(p.glob("*.batch")))  # each read where it is verified
        else:
            files.append((str(p), p))
    if chain:
        report.extend(A.audit_series(files, chain, positions))
    _emit(report, as_json)


@audit.command(epilog=EPILOG)
@click.argument("receipt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_trust_option
@json_option
def receipt(receipt: Path, trust_paths, pinned, as_json: bool) -> None:
    """Verify a receipt: the signed checkpoint and the leaf's inclusion in it."""
    chain, _positions, report = _context([receipt], trust_paths, pinned, None, ())
    if chain:
        report.extend(A.audit_receipt(receipt.read_bytes(), chain, name=str(receipt)))
    _emit(report, as_json)


@audit.command(epilog=EPILOG)
@click.option("--old", "old", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--new", "new", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--proof", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_trust_option
@json_option
def consistency(old: Path, new: Path, proof: Path, trust_paths, pinned, as_json: bool) -> None:
    """Verify that the NEW checkpoint extends the OLD one (append-only log: no truncation, no fork)."""
    chain, _positions, report = _context([old, new], trust_paths, pinned, None, ())
    if chain:
        report.extend(
            A.audit_consistency(
                old.read_text(encoding="utf-8"), new.read_text(encoding="utf-8"), proof.read_bytes(), chain
            )
        )
    _emit(report, as_json)


@audit.command(epilog=EPILOG)
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-version", type=int, help="judge under this trust version instead of the batch's log position")
@_trust_option
@_position_options
@json_option
def record(
    proof: Path, trust_version: int | None, trust_paths, pinned, bundle_dir, receipt_paths, as_json: bool
) -> None:
    """Verify one teacher's record proof (the record is in a signed batch, judged at the batch's log position)
    without the rest of the batch."""
    chain, positions, report = _context([proof], trust_paths, pinned, bundle_dir, receipt_paths)
    if chain:
        data = proof.read_bytes()
        tv = trust_version
        if tv is None:
            try:
                header = header_from_payload(envelope_from_json(parse_json(data)["envelope"]).payload)
                tv, _logged = positions.get(header.province, header.seq)
            except (ProtocolError, KeyError, TypeError):
                pass  # audit_record_proof reports the malformed proof
        report.extend(A.audit_record_proof(data, chain, name=str(proof), trust_version=tv))
    _emit(report, as_json)


@audit.command(epilog=EPILOG)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--pinned",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="pin this trust document instead of the bundle's lowest version",
)
@json_option
def bundle(directory: Path, pinned: Path | None, as_json: bool) -> None:
    """Verify an exported audit bundle: trust chain, log against its checkpoint, every batch at its log
    position, series, receipts."""
    _emit(A.audit_bundle(directory, pinned=pinned.read_bytes() if pinned else None), as_json)


@audit.command(epilog=EPILOG)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("transfer_id")
@click.option(
    "--pinned",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="pin this trust document instead of the bundle's lowest version",
)
@json_option
def transfer(directory: Path, transfer_id: str, pinned: Path | None, as_json: bool) -> None:
    """Show and verify the signed trail of one cross-province transfer in an exported bundle: every
    province-signed message in log order (state machine replayed) and every inbox message about it."""
    report, trail = A.audit_transfer(directory, transfer_id, pinned=pinned.read_bytes() if pinned else None)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "trail": trail}, ensure_ascii=False, indent=2))
        sys.exit(0 if report.ok else 1)
    for e in trail:
        if e["source"] == "log":
            where = f"log leaf {e['leaf_index']:<5} {e['accepted_at']}"
            state = f" -> {e['state_after']}" + (f" (next: {e['next_step']})" if e["next_step"] else "")
        else:
            where = f"inbox {e['province']}#{e['seq']:<4} {e['created_at']}"
            state = ""
        detail = ", ".join(
            f"{k}={v}"
            for k, v in e["body"].items()
            if k in ("step", "decision", "reason", "outcome", "teacher_number", "file_hash") and v
        )
        click.echo(f"{where}  {e['signed_by']:<22} {e['kind']:<20} {detail}{state}")
    _emit(report, False)
