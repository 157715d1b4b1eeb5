"""Sending teacher files to the national node again (重新上报): the repair after a reconciliation found a
difference (docs/operations.md, "Reconciliation"), and the re-send of a record the national node refused once
its cause is fixed (a parked record).

A re-send is a **new version**: the file's current effective core view goes into the outbox as an ``upsert``
with the next outbox version, exactly as a new effective version would (``sync.outbox.append``), so it travels
in the next round's batch, is signed, logged and receipted like any other record, and the national node
applies it because it is newer than what it holds. Nothing about the file itself changes. Only files with an
effective version are sent, and never one handed over to another province.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from common.errors import FieldError, NotFoundError, ValidationError
from provincial_node.accounts.models import Unit
from provincial_node.accounts.units import get_unit_by_code
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.sync import outbox
from provincial_node.sync.models import ParkedRecord
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import FileStatus


@dataclass(frozen=True)
class Resent:
    teacher_number: str
    version: int | None  # the outbox version of the record sent again; None when it cannot be sent
    reason: str = ""  # why it cannot be sent


def _send(ctx: ProvinceContext, teacher: Teacher) -> Resent:
    if not teacher.ever_effective:
        return Resent(teacher.teacher_number, None, "no effective version yet")
    if teacher.status == FileStatus.TRANSFERRED_OUT:
        return Resent(teacher.teacher_number, None, "handed over to another province")
    entry = outbox.append(ctx, teacher)
    return Resent(teacher.teacher_number, entry.version)


def reload(
    ctx: ProvinceContext, *, teacher_numbers: tuple[str, ...] = (), unit_code: str | None = None
) -> list[Resent]:
    """Queue the current core record of each named teacher, or of every teacher of the unit and the units below
    it, as a new version."""
    session = ctx.session
    teachers: list[Teacher] = []
    for tn in teacher_numbers:
        t = session.scalar(select(Teacher).where(Teacher.teacher_number == tn))
        if t is None:
            raise NotFoundError(f"no teacher {tn}", details={"teacher_number": tn})
        teachers.append(t)
    if unit_code is not None:
        unit = get_unit_by_code(session, unit_code)
        stmt = (
            select(Teacher)
            .join(Unit, Unit.id == Teacher.unit_id)
            .where(Unit.path.startswith(unit.path))
            .order_by(Teacher.teacher_number)
        )
        teachers.extend(session.scalars(stmt))
    if not teachers:
        raise ValidationError(
            "nothing to send: name teachers or a unit with teachers",
            [FieldError("sync", "teacher", "请指定教师或单位", "name a teacher number or a unit with teachers", None)],
        )
    done = [_send(ctx, t) for t in {t.id: t for t in teachers}.values()]
    trail.record(ctx, "sync.reload", "teacher", "*", "/", count=sum(1 for r in done if r.version is not None))
    return done


def resend_parked(ctx: ProvinceContext, parked_id: int) -> Resent:
    """Send the record of a parked (refused) teacher again, after its cause was fixed; the parked record remembers
    the version, so ``tmis province sync parked`` shows the outcome once the national node answered."""
    row = ctx.session.get(ParkedRecord, parked_id)
    if row is None:
        raise NotFoundError(f"no parked record {parked_id}", details={"parked_id": parked_id})
    teacher = ctx.session.scalar(select(Teacher).where(Teacher.teacher_number == row.teacher_number))
    if teacher is None:
        raise NotFoundError(f"no teacher {row.teacher_number}", details={"teacher_number": row.teacher_number})
    sent = _send(ctx, teacher)
    if sent.version is not None:
        row.resent_version = sent.version
        trail.record(ctx, "sync.resend_parked", "teacher", teacher.teacher_number, "/", version=sent.version)
    return sent
