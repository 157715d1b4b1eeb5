"""A file's version history (变更记录): field-level differences and the history rows that record them."""

from __future__ import annotations

from typing import Any

from provincial_node.context import ProvinceContext
from provincial_node.teacher_files.models import Teacher, TeacherHistory


def filled(v: Any) -> bool:
    """A value counts as filled (empty strings, empty lists and None do not)."""
    return v not in (None, "", [])


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-level differences ``[{group, index, field, old, new}]`` (index None for single groups)."""
    out = []
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group), new.get(group)
        a_rows = a if isinstance(a, list) else [a or {}]
        b_rows = b if isinstance(b, list) else [b or {}]
        multiple = isinstance(a, list) or isinstance(b, list)
        for i in range(max(len(a_rows), len(b_rows))):
            ra = a_rows[i] if i < len(a_rows) else {}
            rb = b_rows[i] if i < len(b_rows) else {}
            for field in sorted(set(ra) | set(rb)):
                if ra.get(field) != rb.get(field):
                    out.append(
                        {
                            "group": group,
                            "index": i if multiple else None,
                            "field": field,
                            "old": ra.get(field),
                            "new": rb.get(field),
                        }
                    )
    return out


def record_history(
    ctx: ProvinceContext,
    teacher: Teacher,
    action: str,
    *,
    status_from: str | None = None,
    reason: str | None = None,
    changes: list[dict[str, Any]] | None = None,
    entered_by: list[int] | None = None,
) -> None:
    """One history line: who (the context's actor; None: the node), what, the state change, why; on an approval
    also the accounts that entered the version approved (``entered_by``)."""
    ctx.session.add(
        TeacherHistory(
            teacher_id=teacher.id,
            actor_id=ctx.actor.account_id if ctx.actor else None,
            action=action,
            status_from=status_from,
            status_to=teacher.status,
            reason=reason,
            changes=changes or [],
            entered_by=entered_by,
            at=ctx.now,
        )
    )
