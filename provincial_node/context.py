"""Who acts, and the context every service of the provincial node works in (the bottom layer: areas, the
API, the pages, jobs and the CLI all use it; it imports no area).

* :class:`Role` and :class:`UnitLevel` — the five roles and five unit levels (五级应用), with Chinese labels.
* :class:`Actor` — the account acting: its role and its unit's place in the tree. A user acts only inside
  its unit's subtree (``contains``) and only as its role allows.
* :class:`ProvinceContext` — frozen, one per request or job: the session (the request owns the transaction),
  the actor (``None`` when the node itself acts: inbox processing, scheduled jobs, bootstrap), the province
  code, *now*, the node settings, and the catalogue with the province's custom indicators, loaded once, on
  first use. Services take it instead of a tail of positional arguments.
* :class:`ProvinceRuntime` — what the app (or a CLI command, or a test) holds for the node's lifetime; it
  makes contexts. :func:`runtime` and :func:`current_context` are the only lookups of Flask state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from common.catalogue import Catalogue
from common.db import utcnow
from common.enums import LabelledStrEnum
from common.errors import PermissionDeniedError
from common.http import NodeRuntime, runtime_of
from provincial_node.config import ProvincialConfig


class Role(LabelledStrEnum):
    """Roles of an account (暂行办法 art. 13)."""

    SYSADMIN = "sysadmin", "系统管理员"
    INFOADMIN = "infoadmin", "信息管理员"
    QUERY = "query", "信息查询员"
    TRAINING = "training", "培训管理员"
    TEACHER = "teacher", "教师"


class UnitLevel(LabelledStrEnum):
    """Levels of the unit tree: province → city → county → school (→ department, for universities)."""

    PROVINCE = "province", "省级"
    CITY = "city", "地市"
    COUNTY = "county", "区县"
    SCHOOL = "school", "学校"
    DEPARTMENT = "department", "院系"


BUREAU_LEVELS = (UnitLevel.PROVINCE, UnitLevel.CITY, UnitLevel.COUNTY)
SCHOOL_LEVELS = (UnitLevel.SCHOOL, UnitLevel.DEPARTMENT)


class HasPath(Protocol):
    path: str


@dataclass(frozen=True)
class Actor:
    """The account acting and its unit (``unit_path`` is the unit's materialised path ``/1/5/23/``)."""

    account_id: int
    username: str
    role: str
    unit_id: int
    unit_path: str
    unit_level: str
    teacher_id: int | None = None
    second_factor_required: bool = False  # the account signs in with a security key
    second_factor_at: dt.datetime | None = None  # its last key check (the session's, or the API token's)

    def contains(self, unit: HasPath) -> bool:
        """The unit lies in the actor's subtree (its own unit included)."""
        return unit.path.startswith(self.unit_path)

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise PermissionDeniedError(
                f"role {self.role} may not do this (needs {' or '.join(roles)})",
                details={"role": self.role, "allowed": [str(r) for r in roles]},
            )

    def require_level(self, *levels: UnitLevel) -> None:
        if self.unit_level not in levels:
            raise PermissionDeniedError(
                f"a {self.unit_level}-level user may not do this",
                details={"level": self.unit_level, "allowed": [str(lv) for lv in levels]},
            )


@dataclass(frozen=True)
class Settings:
    """Node settings services read (from :class:`~provincial_node.config.ProvincialConfig`): the province's
    choices of request lifetime, token and session lifetimes, password expiry, login throttling, the read alert
    and the data-sharing review period."""

    transfer_expiry: dt.timedelta = dt.timedelta(days=60)
    import_max_bytes: int = 16 * 1024 * 1024
    import_max_rows: int = 50_000
    import_chunk_rows: int = 200
    token_lifetime: dt.timedelta = dt.timedelta(minutes=480)
    token_idle: dt.timedelta = dt.timedelta(minutes=30)
    password_max_age: dt.timedelta | None = dt.timedelta(days=90)
    login_max_failures: int = 5
    login_lock: dt.timedelta = dt.timedelta(minutes=15)
    login_max_per_address: int = 20
    read_alert_per_hour: int = 100
    sharing_review_days: int = 5
    step_up: dt.timedelta = dt.timedelta(minutes=10)  # how recent a key check must be for a step-up

    @classmethod
    def from_config(cls, config: ProvincialConfig) -> Settings:
        return cls(
            transfer_expiry=dt.timedelta(days=config.transfer_expiry_days),
            import_max_bytes=config.import_max_bytes,
            import_max_rows=config.import_max_rows,
            import_chunk_rows=config.import_chunk_rows,
            token_lifetime=dt.timedelta(minutes=config.token_lifetime_minutes),
            token_idle=dt.timedelta(minutes=config.token_idle_minutes),
            password_max_age=dt.timedelta(days=config.password_max_age_days) if config.password_max_age_days else None,
            login_max_failures=config.login_max_failures,
            login_lock=dt.timedelta(minutes=config.login_lock_minutes),
            login_max_per_address=config.login_max_per_address,
            read_alert_per_hour=config.read_alert_per_hour,
            sharing_review_days=config.sharing_review_days,
            step_up=dt.timedelta(minutes=config.step_up_minutes),
        )


CatalogueExtender = Callable[[Session, Catalogue], Catalogue]


@dataclass(frozen=True)
class ProvinceContext:
    """One request's (or job's) view of the node. Build it with :meth:`ProvinceRuntime.context` (or, in tests,
    directly); change the actor or the time with :meth:`acting_as` / :meth:`at`."""

    session: Session
    actor: Actor | None
    province: str
    base_catalogue: Catalogue
    now: dt.datetime = field(default_factory=utcnow)
    settings: Settings = field(default_factory=Settings)
    extend_catalogue: CatalogueExtender | None = None

    @cached_property
    def catalogue(self) -> Catalogue:
        """The catalogue with the province's custom indicators (地方拓展指标), loaded once per context."""
        if self.extend_catalogue is None:
            return self.base_catalogue
        return self.extend_catalogue(self.session, self.base_catalogue)

    def reload_catalogue(self) -> None:
        """Forget the loaded catalogue (after this request changed the custom indicators)."""
        self.__dict__.pop("catalogue", None)

    @property
    def user(self) -> Actor:
        """The acting account; a context of the node itself (no account) may not do what needs one."""
        if self.actor is None:
            raise PermissionDeniedError("this needs a signed-in account")
        return self.actor

    def acting_as(self, actor: Actor | None) -> ProvinceContext:
        return dataclasses.replace(self, actor=actor)

    def at(self, now: dt.datetime) -> ProvinceContext:
        return dataclasses.replace(self, now=now)


@dataclass(frozen=True)
class ProvinceRuntime(NodeRuntime):
    """The node for its lifetime: config, engine, sessions, catalogue, and what the areas contribute
    (``extend_catalogue``: custom indicators; ``inbox``: the sync round's dispatch of national messages)."""

    config: ProvincialConfig
    extend_catalogue: CatalogueExtender | None = None
    inbox: Any = None  # provincial_node.sync.inbox_handlers.InboxDispatch (built by the app from the areas)
    tasks: Any = None  # provincial_node.tasks.service.TaskHandlers (the areas' kinds of background work)
    settings: Settings = field(default_factory=Settings)
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def province(self) -> str:
        return self.config.province_code

    def context(self, session: Session, actor: Actor | None = None, now: dt.datetime | None = None) -> ProvinceContext:
        return ProvinceContext(
            session=session,
            actor=actor,
            province=self.province,
            base_catalogue=self.catalogue,
            now=now or utcnow(),
            settings=self.settings,
            extend_catalogue=self.extend_catalogue,
        )


def runtime(app: Flask | None = None) -> ProvinceRuntime:
    """The provincial runtime of ``app`` (default: the current app)."""
    rt = runtime_of(app or current_app)
    if not isinstance(rt, ProvinceRuntime):
        raise TypeError("not a provincial node app")
    return rt


def current_context() -> ProvinceContext:
    """The current request's context (set by the API or page shell once the caller is known)."""
    ctx = g.get("tmis_context")
    if ctx is None:
        raise RuntimeError("no province context for this request")
    return ctx


def set_current_context(ctx: ProvinceContext) -> None:
    g.tmis_context = ctx
