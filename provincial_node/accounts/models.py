"""Tables of the accounts area (五级应用): the unit tree, review-chain settings, accounts and API tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from common.protection import BlindIndex, ProtectedString
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
    id_number: Mapped[str | None] = mapped_column(ProtectedString(200))  # encrypted at rest
    id_index: Mapped[str | None] = mapped_column(BlindIndex, index=True)  # keyed blind index of id_number
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
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
    # raised by a lock-out, reset, disable or role change: every token and web session of an older generation ends
    session_generation: Mapped[int] = mapped_column(Integer, default=0)

    def set_id_number(self, number: str | None) -> None:
        """The ID number (encrypted when stored) and its blind index, together."""
        self.id_number = number
        self.id_index = number


class PasswordHistory(Base):
    """The hashes of an account's earlier passwords (a new password may not be one of the last 5)."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored. Expiring (idle and absolute), revocable, and ended by a
    newer session generation of its account."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()  # the absolute lifetime
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()  # the idle timeout counts from here
    generation: Mapped[int] = mapped_column(Integer, default=0)  # the account's session generation at issue
    second_factor_at: Mapped[dt.datetime | None] = mapped_column()  # the key check it was issued after


class WebSession(Base):
    """A signed-in browser (the pages' session; API clients use ``ApiToken``). Only the SHA-256 of the cookie's
    random value is stored. It ends at logout, after ``TMIS_TOKEN_IDLE_MINUTES`` without a request, after
    ``TMIS_TOKEN_LIFETIME_MINUTES`` in any case, and whenever the account is locked, reset or disabled."""

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
    second_factor_at: Mapped[dt.datetime | None] = mapped_column()  # the last key check in this session
    challenge: Mapped[bytes | None] = mapped_column(LargeBinary)  # of the WebAuthn ceremony in progress
    challenge_at: Mapped[dt.datetime | None] = mapped_column()


class SecurityKey(Base):
    """A WebAuthn security key (the role of the education-CA UKey) enrolled for an account: its credential id,
    public key (COSE) and signature counter. Revoked keys are kept (the audit trail names them)."""

    __tablename__ = "security_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    supervised_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))  # who issued the enrolment code
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


class SecondFactorCode(Base):
    """A one-time code of an account: an enrolment code (登记码, from the unit above, expiring) or a recovery
    code (恢复码). Only the SHA-256 of the code is stored; ``used_at`` marks it spent (or replaced)."""

    __tablename__ = "second_factor_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # enrolment | recovery
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
