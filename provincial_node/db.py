"""The provincial node's declarative base and its node-level tables.

Every area's ``models.py`` builds on :data:`Base` (one metadata, one Alembic environment per node:
``migrations/env.py`` loads every area's models through :mod:`provincial_node.areas`). Tables of one area
refer to another area's tables by name (``ForeignKey("teacher.id")``), never by import, so areas stay
independent of each other's modules.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.db import make_base, utcnow

Base = make_base("ProvincialBase")


class NodeSetting(Base):
    """Node-level facts written once by `init` and read at start-up (province code, key id, catalogue)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Counter(Base):
    """Gapless counters (outbox version, teacher number sequence). Incremented with UPDATE … RETURNING in
    the caller's transaction: the row lock serialises writers and a rollback returns the number."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def next_value(session: Session, name: str) -> int:
    """The next value of a gapless counter, in the caller's transaction."""
    value = session.execute(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
    ).scalar_one()
    return int(value)
