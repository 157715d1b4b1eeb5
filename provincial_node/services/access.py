"""Who is acting, and what they may touch (五级应用: a user acts only inside its unit's subtree).

Roles: ``sysadmin`` (系统管理员, at most one per unit), ``infoadmin`` (信息管理员), ``query`` (信息查询),
``training`` (培训管理员), ``teacher`` (教师自助: only their own file, only teacher-fillable fields).
Scope is the unit tree: unit A contains unit B when B's materialised path starts with A's.
Out-of-scope objects are reported as *not found*, so a user cannot probe for files outside their subtree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from common.errors import NotFoundError, PermissionDeniedError
from provincial_node.models import Account, Unit

ROLES = ("sysadmin", "infoadmin", "query", "training", "teacher")
LEVELS = ("province", "city", "county", "school", "department")


@dataclass(frozen=True)
class Actor:
    account_id: int
    username: str
    role: str
    unit_id: int
    unit_path: str
    unit_level: str
    teacher_id: int | None = None

    @classmethod
    def of(cls, session: Session, account: Account) -> Actor:
        unit = session.get(Unit, account.unit_id)
        return cls(account.id, account.username, account.role, unit.id, unit.path, unit.level, account.teacher_id)

    def contains(self, unit: Unit) -> bool:
        return unit.path.startswith(self.unit_path)

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise PermissionDeniedError(
                f"role {self.role} may not do this (needs {' or '.join(roles)})",
                details={"role": self.role, "allowed": list(roles)},
            )

    def require_level(self, *levels: str) -> None:
        if self.unit_level not in levels:
            raise PermissionDeniedError(
                f"a {self.unit_level}-level user may not do this",
                details={"level": self.unit_level, "allowed": list(levels)},
            )


def unit_in_scope(session: Session, actor: Actor, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None or not actor.contains(unit):
        raise NotFoundError(f"unit {unit_id} not found", details={"unit_id": unit_id})
    return unit
