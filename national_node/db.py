"""The national node's declarative base and its node-level settings (every area's ``models.py`` builds on
:data:`Base`; one Alembic environment loads them all through :mod:`national_node.areas`). Tables of one area
refer to another's by name (``ForeignKey("province.code")``), never by import."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import make_base, utcnow

Base = make_base("NationalBase")


class NodeSetting(Base):
    """Node-level facts written once by `init` (log origin, key paths and ids)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
