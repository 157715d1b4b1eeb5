"""一人一号: the national node found the same identity document under teacher numbers of two provinces
and tells both (inbox kind ``duplicate_identity``). The notice is recorded in the audit trail of the unit
holding this province's file (the province unit if the file is no longer here), where its administrators
see it; resolving the duplicate is a matter for the two provinces."""

from __future__ import annotations

from sqlalchemy import select

from provincial_node.accounts.access import province_unit
from provincial_node.accounts.models import Unit
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceContext
from provincial_node.teacher_files.models import Teacher
from sync_protocol.inbox import InboxMessage


def on_duplicate_identity(ctx: ProvinceContext, msg: InboxMessage) -> None:
    numbers = msg.body["teacher_numbers"]
    ours = [n["teacher_number"] for n in numbers if n["province"] == ctx.province]
    others = [n for n in numbers if n["province"] != ctx.province]
    teacher = ctx.session.scalar(select(Teacher).where(Teacher.teacher_number.in_(ours))) if ours else None
    unit = ctx.session.get(Unit, teacher.unit_id) if teacher else province_unit(ctx.session)
    trail.record(
        ctx,
        "identity.duplicate_notice",
        "teacher",
        ",".join(ours) or "-",
        unit.path,
        reason="同一身份证件在其他省份另有教师编号（一人一号）",
        other=others,
        inbox_seq=msg.seq,
    )


INBOX_HANDLERS = {"duplicate_identity": on_duplicate_identity}
