"""``tmis national duplicates | evidence | checkpoint | teacher | export``: what the operator and the auditor
look at."""

from __future__ import annotations

from pathlib import Path

import click

from common.db import session_scope
from national_node.cli import _runtime
from national_node.export.bundle import export_bundle
from national_node.intake import intake
from national_node.ledger import ledger
from sync_protocol.errors import MalformedError
from sync_protocol.identifiers import check_teacher_number


@click.command("export")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="bundle directory to create")
@click.pass_context
def export(ctx: click.Context, output: str) -> None:
    """Export the audit bundle (trust, batches, receipts, transfer messages, inbox messages, log leaves,
    checkpoint) for `tmis audit bundle` and `tmis audit transfer`."""
    rt = _runtime.runtime(ctx)
    root = Path(output)
    with session_scope(rt.session_factory) as s:  # committed: the routed messages it sequenced stay sequenced
        done = export_bundle(s, rt.keys(), rt.origin, root)
    click.echo(
        f"exported {done.batches} batches, {done.messages} transfer messages, {done.leaves} log leaves to {root}; "
        f"verify with: tmis audit bundle {root}"
    )


@click.command("duplicates")
@click.option(
    "--sweep",
    is_flag=True,
    help="first look for duplicates no intake saw (two provinces at the same moment) and notify",
)
@click.pass_context
def duplicates(ctx: click.Context, sweep: bool) -> None:
    """Cross-province duplicate identities (the same document under two teacher numbers)."""
    rt = _runtime.runtime(ctx)
    if sweep:
        with session_scope(rt.session_factory) as s:
            found = intake.sweep_duplicates(s, rt.keys())
        click.echo(f"sweep: {found} new duplicate identit{'y' if found == 1 else 'ies'} notified")
    with rt.session_factory() as s:
        rows = intake.list_duplicates(s)
        for d in rows:
            click.echo(
                f"{d.detected_at:%Y-%m-%d %H:%M} {d.teacher_number_a} ({d.province_a}) = "
                f"{d.teacher_number_b} ({d.province_b}){'  resolved' if d.resolved_at else ''}"
            )
    click.echo(f"{len(rows)} duplicate identit{'y' if len(rows) == 1 else 'ies'}")


@click.command("teacher")
@click.argument("teacher_number")
@click.option("--version", "version", type=click.IntRange(min=0), help="print this version's record as signed")
@click.pass_context
def teacher(ctx: click.Context, teacher_number: str, version: int | None) -> None:
    """A teacher number's current core record and every applied version (read back from the stored batches)."""
    try:
        check_teacher_number(teacher_number)
    except MalformedError as e:
        raise click.BadParameter(str(e), param_hint="TEACHER_NUMBER") from None
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        if version is not None:
            line = intake.record_at(s, teacher_number, version)
            if line is None:
                raise click.ClickException(f"no batch applied version {version} of {teacher_number}")
            click.echo(line.decode())
            return
        core, versions = intake.teacher_versions(s, teacher_number)
        if core is None:
            raise click.ClickException(f"the national store holds no teacher {teacher_number}")
        click.echo(
            f"{teacher_number}  province {core.province_code}  version {core.version}  {core.op}  "
            f"updated {core.updated_at:%Y-%m-%d %H:%M:%S}Z"
        )
        for h, seq in versions:
            source = f"batch {h.province_code}#{seq}" if seq is not None else f"transfer message {h.batch_hash[:12]}…"
            click.echo(
                f"  version {h.version:>8}  {h.province_code}  {h.op:<14} {source:<28} "
                f"{h.applied_at:%Y-%m-%d %H:%M:%S}Z"
            )


@click.command("checkpoint")
@click.pass_context
def checkpoint_cmd(ctx: click.Context) -> None:
    """Print the newest signed checkpoint of the acceptance log."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        click.echo(ledger.checkpoint(s, rt.keys(), rt.origin), nl=False)


@click.command("evidence")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="also write each offered batch file here")
@click.pass_context
def evidence(ctx: click.Context, output: str | None) -> None:
    """Equivocation evidence: provinces that signed two different batches for one sequence number."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        rows = intake.list_evidence(s)
        for e in rows:
            click.echo(
                f"{e.received_at:%Y-%m-%d %H:%M:%S} province {e.province_code} seq {e.seq}: accepted "
                f"{e.accepted_batch_hash[:16]}…, offered {e.offered_batch_hash[:16]}…"
            )
            if output:
                Path(output).mkdir(parents=True, exist_ok=True)
                (Path(output) / f"{e.province_code}-{e.seq:08d}-{e.offered_batch_hash}.batch").write_bytes(
                    e.offered_data
                )
    click.echo(f"{len(rows)} equivocation(s)")


COMMANDS = (export, duplicates, teacher, checkpoint_cmd, evidence)
