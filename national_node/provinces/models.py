"""The federation's members: each province's chain state (intake locks its row, so one province's batches
apply strictly in order while provinces run in parallel), its keys, its one-time enrolment tokens, and the
nonces of its signed requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common.db import utcnow
from national_node.db import Base


class Province(Base):
    __tablename__ = "province"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    enrolled_at: Mapped[dt.datetime | None] = mapped_column()
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_batch_hash: Mapped[str | None] = mapped_column(String(64))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[dt.datetime | None] = mapped_column()
    inbox_seq: Mapped[int] = mapped_column(Integer, default=0)  # last inbox message sequence issued
    inbox_acked: Mapped[int] = mapped_column(Integer, default=0)  # last sequence the province acknowledged


class EnrolmentToken(Base):
    """A one-time token the ministry operator hands to a province to enrol its first key."""

    __tablename__ = "enrolment_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class ProvinceKey(Base):
    __tablename__ = "province_key"

    keyid: Mapped[str] = mapped_column(String(64), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class RequestNonce(Base):
    """Nonces of signed province requests seen within the replay window."""

    __tablename__ = "request_nonce"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ProvinceSealKey(Base):
    """A province seal key (sync_protocol.seal), stored only as the province wrapped it to a national seal public
    key (``recipient``): the national node unwraps it in memory to open that province's sealed identities."""

    __tablename__ = "province_seal_key"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("province.code"), index=True)
    recipient: Mapped[str] = mapped_column(String(40))  # the national seal key it is wrapped to
    enc: Mapped[str] = mapped_column(String(64))  # the ephemeral X25519 public key (base64)
    wrapped: Mapped[str] = mapped_column(String(128))  # nonce ‖ AES-256-GCM of the key (base64)
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def wrapped_json(self) -> dict[str, str]:
        return {
            "province": self.province_code,
            "kid": self.kid,
            "recipient": self.recipient,
            "enc": self.enc,
            "wrapped": self.wrapped,
        }
