"""The composition of the files in a user's scope, for the home page's charts (岗位类别, 年龄): counted from the
columns the one effective-write path keeps in step (``post_category``, ``birth_date``), by one grouped query
each — never by reading files. The statistics area (统计分析) will serve full reports; these two are the
at-a-glance view."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from provincial_node.accounts.models import Unit
from provincial_node.context import ProvinceContext
from provincial_node.teacher_files.models import Teacher
from provincial_node.teacher_files.status import FileStatus

AGE_BANDS = (
    (0, 30, "30岁以下"),
    (30, 40, "30–39岁"),
    (40, 50, "40–49岁"),
    (50, 60, "50–59岁"),
    (60, 200, "60岁及以上"),
)


def _scope(ctx: ProvinceContext) -> Any:
    return (
        select(Teacher)
        .join(Unit, Unit.id == Teacher.unit_id)
        .where(
            Unit.path.startswith(ctx.user.unit_path, autoescape=True),
            Teacher.ever_effective.is_(True),
            Teacher.status != FileStatus.TRANSFERRED_OUT,
        )
    )


def composition(ctx: ProvinceContext) -> dict[str, list[dict[str, Any]]]:
    """``{"post_category": [{code, label, count}], "age": [{label, count}]}`` over the effective files in scope."""
    scope = _scope(ctx).subquery()
    posts = ctx.session.execute(
        select(scope.c.post_category, func.count()).group_by(scope.c.post_category).order_by(scope.c.post_category)
    ).all()
    table = ctx.base_catalogue.table("GWLB")
    by_post = [
        {
            "code": code or "",
            "label": (table.codes[code].label if code in table.codes else code) if code else "未填写",
            "count": n,
        }
        for code, n in posts
    ]
    year = ctx.now.year
    born_year = func.substr(scope.c.birth_date, 1, 4).label("born_year")
    births = ctx.session.execute(select(born_year, func.count()).group_by(born_year)).all()
    bands = {label: 0 for _lo, _hi, label in AGE_BANDS}
    unknown = 0
    for born, n in births:
        if not born or not str(born).isdigit():
            unknown += n
            continue
        age = year - int(born)
        for lo, hi, label in AGE_BANDS:
            if lo <= age < hi:
                bands[label] += n
                break
    by_age = [{"label": label, "count": n} for label, n in bands.items()]
    if unknown:
        by_age.append({"label": "未填写", "count": unknown})
    return {"post_category": by_post, "age": by_age}
