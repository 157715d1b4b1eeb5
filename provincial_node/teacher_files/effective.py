"""The one place a teacher file gets a new effective version (生效).

Every workflow that changes effective information ends here: the last review approval, an approved change
request (变更申请), a transfer or rotation completing (调动、交流轮岗), a rotation ending, a file received
from or handed to another province — and the business modules still to come (training credits write
国内培训, registration writes 教师资格, status changes write 人员状态). :func:`write_effective` keeps the
invariants together:

* the version number increases by one and the history records who, what (old → new) and why;
* the working copy (``draft``) stays in step: when it holds nothing beyond the effective file it becomes
  the new file; otherwise the effective change is carried into it and the user's pending edits stay
  (see :func:`draft_in_step`);
* ``teacher.name`` follows 基本信息's 姓名, and the columns lists filter and count on (人员状态, 现任岗位类别,
  出生日期) follow the effective file;
* the outbox decides whether the national node must hear of it (:func:`provincial_node.sync.outbox.record_change`:
  only when the core view changed, always for a transfer out).

It runs in the caller's transaction and never commits.
"""

from __future__ import annotations

import copy
from typing import Any

from provincial_node.context import ProvinceContext
from provincial_node.sync import outbox
from provincial_node.teacher_files.history import diff, record_history
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import FileStatus
from sync_protocol.records import RecordOp


def write_effective(
    ctx: ProvinceContext,
    teacher: Teacher,
    data: dict[str, Any],
    *,
    action: str,
    reason: str | None = None,
    status: FileStatus | None = None,
    op: RecordOp = RecordOp.UPSERT,
    to_province: str | None = None,
    entered_by: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Make ``data`` the file's effective version (and ``status`` its state, when given); returns the
    field-level changes recorded in the history."""
    before, old_status = teacher.data, teacher.status
    new = copy.deepcopy(data)
    changes = diff(before, new)
    teacher.draft = draft_in_step(teacher.draft, before, new)
    teacher.data = new
    if status is not None:
        teacher.status = status
    teacher.ever_effective = True
    teacher.file_version += 1
    basic = new.get("JBXX") or {}
    if basic.get("XM"):
        teacher.name = basic["XM"]
    teacher.person_status = basic.get("RYZTM")
    teacher.post_category = basic.get("XRGWLBM")
    teacher.birth_date = basic.get("CSRQ")
    record_history(ctx, teacher, action, status_from=old_status, reason=reason, changes=changes, entered_by=entered_by)
    outbox.record_change(ctx, teacher, before, op=op, to_province=to_province)
    return changes


def draft_in_step(draft: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The working copy after the effective file changed from ``before`` to ``after``.

    A working copy with nothing pending (equal to ``before``, or already equal to ``after``) becomes
    ``after``. Otherwise each group the effective change touched is carried in: a group the user did not
    touch takes the new effective content; records the user appended to a multi-record group stay after the
    effective ones; where the user edited the same record, only the fields the effective change touched
    are overwritten.
    """
    if draft in (before, after):
        return copy.deepcopy(after)
    out = copy.deepcopy(draft)
    for group in sorted(set(before) | set(after)):
        old, new, mine = before.get(group), after.get(group), draft.get(group)
        if old == new:
            continue
        if mine == old:
            if new is None:
                out.pop(group, None)
            else:
                out[group] = copy.deepcopy(new)
        elif isinstance(new, list) or isinstance(old, list):
            old_rows, new_rows, my_rows = list(old or []), list(new or []), list(mine or [])
            if my_rows[: len(old_rows)] == old_rows:
                out[group] = copy.deepcopy(new_rows) + copy.deepcopy(my_rows[len(old_rows) :])
            else:
                out[group] = _carry_rows(my_rows, old_rows, new_rows)
        else:
            out[group] = _carry_fields(mine or {}, old or {}, new or {})
    return out


def _carry_fields(mine: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    row = dict(mine)
    for field in set(old) | set(new):
        if old.get(field) != new.get(field):
            if field in new:
                row[field] = copy.deepcopy(new[field])
            else:
                row.pop(field, None)
    return dict(sorted(row.items()))


def _carry_rows(mine: list[Any], old: list[Any], new: list[Any]) -> list[Any]:
    rows = [dict(r) for r in mine]
    for i in range(max(len(old), len(new))):
        o = old[i] if i < len(old) else {}
        n = new[i] if i < len(new) else {}
        if i < len(rows):
            rows[i] = _carry_fields(rows[i], o, n)
        elif n:
            rows.append(copy.deepcopy(n))
    return rows
