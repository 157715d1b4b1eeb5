"""``tmis province second-factor …``: the operator's side of the security keys — which roles must use one, the
enrolment codes of the province's own accounts (they have no unit above), and who has not enrolled yet."""

from __future__ import annotations

import click
from sqlalchemy import select

from common.db import session_scope
from common.errors import NotFoundError
from provincial_node.accounts import second_factor
from provincial_node.accounts.models import Account
from provincial_node.cli import _runtime
from provincial_node.context import Role


@click.group("second-factor")
def group() -> None:
    """Security keys (安全密钥, WebAuthn) of administrators: policy, enrolment codes, status."""


@group.command("roles")
@click.option("--set", "roles", default=None, help='roles that must use a key, comma-separated ("" for none)')
@click.pass_context
def roles_cmd(ctx: click.Context, roles: str | None) -> None:
    """Show (or set) the roles that must sign in with a security key."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory, write=True) as s:
        if roles is not None:
            second_factor.set_required_roles(rt.context(s), roles.split(","))
        current = second_factor.required_roles(s)
    click.echo("roles that must use a security key: " + (", ".join(current) or "none"))


@group.command("enrolment-code")
@click.option("--username", required=True, help="an account of the province's own unit")
@click.pass_context
def code_cmd(ctx: click.Context, username: str) -> None:
    """A one-time enrolment code for an account of the province unit (shown once; 72 hours)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory, write=True) as s:
        account = s.scalar(select(Account).where(Account.username == username))
        if account is None:
            raise NotFoundError(f"no account {username!r}", details={"username": username})
        code = second_factor.issue_enrolment_code(rt.context(s), account.id)
    click.echo(f"enrolment code for {username}: {code}")
    click.echo("hand it over in person or by phone; it works once, within 72 hours, on the page 安全密钥")


@group.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Who must use a key, and who has not enrolled one yet."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        accounts = list(s.scalars(select(Account).where(Account.role != Role.TEACHER).order_by(Account.username)))
        states = second_factor.enrolment_states(rt.context(s), accounts)
        roles = second_factor.required_roles(s)
    click.echo("roles that must use a security key: " + (", ".join(roles) or "none"))
    missing = [st for st in states.values() if st.required and not st.keys and not st.account.disabled]
    for st in missing:
        pending = " (enrolment code issued)" if st.code_pending else ""
        click.echo(f"  not enrolled: {st.account.username} ({st.account.role}){pending}")
    enrolled = sum(1 for st in states.values() if st.keys)
    click.echo(f"{enrolled} accounts with a key, {len(missing)} required accounts without one")


COMMANDS = (group,)
