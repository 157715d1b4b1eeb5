"""What every ``tmis province`` command starts from: the config from the environment, the runtime (its engine
disposed when the command ends), and — for commands that act as a user — that user's actor."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.cli import open_engine
from common.db import session_scope
from common.errors import AuthError, PermissionDeniedError
from provincial_node.accounts import accounts
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


def password_option(f: Any) -> Any:
    """``--password`` of the ``--as`` account: from TMIS_PASSWORD, or asked for (never echoed)."""
    return click.option(
        "--password",
        envvar="TMIS_PASSWORD",
        prompt="password of the --as account",
        hide_input=True,
        help="password of the --as account (or TMIS_PASSWORD; asked for when neither is given)",
    )(f)


def check_user(rt: ProvinceRuntime, username: str, password: str) -> None:
    """The CLI acts as a user only with that user's credentials: the password is checked like a login (failures
    count towards the lock-out and are kept; a locked, disabled or not yet activated account is refused)."""
    failure: Exception | None = None
    with session_scope(rt.session_factory, write=True) as s:
        try:
            account = accounts.check_credentials(rt.context(s), username, password)
            if account.must_change_password:
                failure = PermissionDeniedError(
                    "change the initial password first (POST /api/v1/auth/password)",
                    details={"reason": "password_change_required", "username": username},
                )
        except AuthError as e:  # commit the failure count, then refuse
            e.details.setdefault("username", username)
            failure = e
    if failure is not None:
        raise failure


def acting_as(rt: ProvinceRuntime, session: Session, username: str) -> ProvinceContext:
    """A context acting as ``username``, after :func:`check_user` (the account decides scope, and the audit
    trail names it)."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or account.disabled:
        raise AuthError(f"no active account {username!r}", details={"username": username})
    return rt.context(session, actor_for(session, account))
