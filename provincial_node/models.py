"""Tables of the Provincial node (省级节点). Schema changes go through Alembic migrations in `migrations/`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import make_base, utcnow

Base = make_base("ProvincialBase")


class NodeSetting(Base):
    """Node-level facts written once by `init` and read at start-up (province code, key id, catalogue)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
