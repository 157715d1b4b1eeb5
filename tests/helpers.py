"""Contexts for tests that call the provincial node's services directly."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from common.catalogue import load_catalogue
from common.db import utcnow
from provincial_node.context import Actor, ProvinceContext, Settings
from provincial_node.teacher_files.custom_fields import catalogue_for


def ctx(
    session: Session,
    actor: Actor | None = None,
    *,
    province: str = "44",
    now: dt.datetime | None = None,
    expiry: dt.timedelta | None = None,
) -> ProvinceContext:
    """The context a request of ``actor`` (None: the node itself) would get."""
    return ProvinceContext(
        session=session,
        actor=actor,
        province=province,
        base_catalogue=load_catalogue(),
        now=now or utcnow(),
        settings=Settings(transfer_expiry=expiry) if expiry else Settings(),
        extend_catalogue=catalogue_for,
    )
