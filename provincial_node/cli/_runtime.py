"""What every ``tmis province`` command starts from: the config from the environment, the runtime (its engine
disposed when the command ends), and — for commands that act as a user — that user's actor, once the user's
password or token is shown."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click
from sqlalchemy.orm import Session

from common.cli import open_engine
from common.errors import AuthError, PermissionDeniedError
from provincial_node.accounts import accounts, second_factor, tokens
from provincial_node.accounts.access import actor_for
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


def credential_options(f: Any) -> Any:
    """``--as USER`` and ``--token``: a command acting as a user needs that user's credentials — the password
    (asked for, never echoed; read from standard input when it is not a terminal) or an API token of that user."""
    f = click.option(
        "--token",
        envvar="TMIS_TOKEN",
        default=None,
        help="an API token of USER (POST /api/v1/auth/login) instead of the password; or TMIS_TOKEN",
    )(f)
    return click.option("--as", "username", required=True, help="the account the command acts as (audited)")(f)


def acting_as(
    rt: ProvinceRuntime,
    session: Session,
    username: str,
    token: str | None = None,
    *,
    password: str | None = None,
    allow_initial: bool = False,
) -> ProvinceContext:
    """A context acting as ``username``, once the user's credentials are shown: an API token of that account, or
    its password (checked like a login, with the same lock-out, throttling and login log). Shell access to the
    node is not enough to act as someone. The account still decides scope, and the audit trail names it."""
    ctx = rt.context(session)
    if token:
        account = tokens.authenticate(session, token, now=ctx.now, settings=rt.settings)
        if account.username != username:
            raise AuthError("the token belongs to another account", details={"username": username})
    else:
        if password is None:  # TMIS_PASSWORD for scripts; otherwise asked for, never echoed
            password = os.environ.get("TMIS_PASSWORD") or click.prompt(
                f"password of {username}", hide_input=True, err=True
            )
        try:
            account = accounts.verify_credentials(ctx, username, password, address="cli", channel="cli")
        except AuthError:
            session.commit()  # the failure count and the login log stay, as for a failed API login
            raise
    if account.must_change_password and not allow_initial:
        session.commit()
        raise PermissionDeniedError(
            f"{username} must change the password first (tmis province password --as {username})",
            details={"reason": "password_change_required"},
        )
    actor = actor_for(session, account)
    if second_factor.required(ctx, account):  # a key user: only with a token issued after a key check
        row = tokens.token_row(session, token) if token else None
        if row is None:
            session.commit()
            raise second_factor.SecondFactorRequiredError(
                f"{username} signs in with a security key: use --token with a token from the page 安全密钥 "
                "(/account/security-key)",
                details={"reason": "api_token_from_page"},
            )
        actor = dataclasses.replace(actor, second_factor_required=True, second_factor_at=row.second_factor_at)
    return rt.context(session, actor)
