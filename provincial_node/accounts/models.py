"""Tables of the accounts area (五级应用): the unit tree, review-chain settings, accounts and API tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from provincial_node.db import Base


class Unit(Base):
    """One node of the unit tree: province → city → county → school (→ department)."""

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # division code or 学校标识码
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))  # province|city|county|school|department
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    path: Mapped[str] = mapped_column(String(400), index=True)  # "/1/5/23/": subtree = path prefix
    division_code: Mapped[str | None] = mapped_column(String(6))
    school_type: Mapped[str | None] = mapped_column(String(3))  # 办学类型
    urban_rural_type: Mapped[str | None] = mapped_column(String(3))  # 城乡分类代码
    sponsor_type: Mapped[str | None] = mapped_column(String(3))  # 举办者类型
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))  # a school's supervising bureau
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewChain(Base):
    """Which bureau levels review files of a school stage after the school: "county" or "county,city"."""

    __tablename__ = "review_chain"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    levels: Mapped[str] = mapped_column(String(64))


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (
        # at most one system administrator per unit
        Index(
            "uq_account_one_sysadmin_per_unit",
            "unit_id",
            unique=True,
            sqlite_where=text("role = 'sysadmin'"),
            postgresql_where=text("role = 'sysadmin'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    real_name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str | None] = mapped_column(String(30))
    phone: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # sysadmin|infoadmin|query|training|teacher
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teacher.id"))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column()


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored. Expiring and revocable."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class WebSession(Base):
    """A signed-in browser (the pages' session; API clients use ``ApiToken``). Only the SHA-256 of the cookie's
    random value is stored. It ends at logout, after ``TMIS_WEB_IDLE_MINUTES`` without a request, after
    ``TMIS_WEB_SESSION_HOURS`` in any case, and whenever the account is locked, reset or disabled."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
