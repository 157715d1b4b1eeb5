"""The reconciliation's tables: ``core_leaf`` / ``digest_bucket`` are the digest tree of each province's core
view as stored here (kept in step with ``teacher_core`` when a province asks, :mod:`.reconcile`);
``reconciliation`` every comparison a province asked for, with the teacher numbers found to differ."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from national_node.db import Base


class CoreLeaf(Base):
    __tablename__ = "core_leaf"

    teacher_number: Mapped[str] = mapped_column(String(13), primary_key=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)
    bucket: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    record_hash: Mapped[str] = mapped_column(String(64))


class DigestBucket(Base):
    __tablename__ = "digest_bucket"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))


class Reconciliation(Base):
    __tablename__ = "reconciliation"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(String(2), index=True)
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    province_root: Mapped[str] = mapped_column(String(64))
    national_root: Mapped[str] = mapped_column(String(64))
    matched: Mapped[bool] = mapped_column(Boolean)
    province_leaves: Mapped[int] = mapped_column(Integer)
    national_leaves: Mapped[int] = mapped_column(Integer)
    # [{teacher_number, province_version, national_version}] found by the province's descent
    differing: Mapped[list[Any]] = mapped_column(JSON, default=list)
