"""Scope rules (五级应用: a user acts only inside its unit's subtree).

Scope is the unit tree: unit A contains unit B when B's materialised path starts with A's. Out-of-scope
objects are reported as *not found*, so a user cannot probe for files outside their subtree. The roles
and levels themselves are :class:`~provincial_node.context.Role` and :class:`~provincial_node.context.UnitLevel`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import NotFoundError
from provincial_node.accounts.models import Account, Unit
from provincial_node.context import Actor, ProvinceContext


def actor_for(session: Session, account: Account) -> Actor:
    """The :class:`Actor` of an account (its role and its unit's place in the tree)."""
    unit = session.get(Unit, account.unit_id)
    return Actor(account.id, account.username, account.role, unit.id, unit.path, unit.level, account.teacher_id)


def unit_in_scope(ctx: ProvinceContext, unit_id: int) -> Unit:
    """The unit, if it lies in the actor's subtree; otherwise not found."""
    unit = ctx.session.get(Unit, unit_id)
    if unit is None or not ctx.user.contains(unit):
        raise NotFoundError(f"unit {unit_id} not found", details={"unit_id": unit_id})
    return unit


def province_unit(session: Session) -> Unit:
    """The root of the tree (the province's own unit)."""
    return session.scalars(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id).limit(1)).one()
