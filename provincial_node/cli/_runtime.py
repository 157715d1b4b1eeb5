"""What every ``tmis province`` command starts from: the config from the environment, the runtime (its engine
disposed when the command ends), and — for commands that act as a user — that user's actor."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.cli import open_engine
from common.errors import AuthError
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account
from provincial_node.app import build_runtime
from provincial_node.config import ProvincialConfig, config_from_env
from provincial_node.context import ProvinceContext, ProvinceRuntime


def config(ctx: click.Context, *, require_code: bool = False, **overrides: object) -> ProvincialConfig:
    cfg = config_from_env(ctx.obj["env"], **overrides)
    if require_code and not cfg.province_code:
        raise click.UsageError("TMIS_PROVINCE_CODE is required")
    return cfg


def runtime(ctx: click.Context, cfg: ProvincialConfig | None = None) -> ProvinceRuntime:
    cfg = cfg or config(ctx)
    return build_runtime(cfg, open_engine(ctx, cfg.database))


def acting_as(rt: ProvinceRuntime, session: Session, username: str) -> ProvinceContext:
    """A context acting as ``username`` (whoever runs the CLI has database access; the account still decides
    scope, and the audit trail names it)."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or account.disabled:
        raise AuthError(f"no active account {username!r}", details={"username": username})
    return rt.context(session, actor_for(session, account))
