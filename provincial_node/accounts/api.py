"""``/api/v1/auth``, ``/me``, ``/units``, ``/review-chains``, ``/accounts``: login and the five-level tree."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from common.errors import AuthError, BadRequestError
from common.http import keep_writes_on_error
from provincial_node.accounts import accounts, second_factor, tokens, units
from provincial_node.accounts.access import unit_in_scope
from provincial_node.accounts.models import Account, Unit
from provincial_node.accounts.schemas import (
    AccountActionIn,
    AccountActionOut,
    AccountIn,
    AccountOut,
    AccountsOut,
    ChangedOut,
    LoginIn,
    MeOut,
    PasswordIn,
    ReviewChainIn,
    ReviewChainOut,
    RevokedOut,
    TokenOut,
    UnitImportOut,
    UnitIn,
    UnitOut,
    UnitsOut,
)
from provincial_node.context import current_context

auth_bp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Login, tokens, passwords")
units_bp = Blueprint("units", __name__, url_prefix="/api/v1", description="Unit tree and review chains")
accounts_bp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts (five-level use)")

# endpoints the API shell lets through without a token, or before the initial password is changed
PUBLIC_ENDPOINTS = frozenset({"auth.Login"})
ALLOWED_BEFORE_PASSWORD_CHANGE = frozenset({"auth.Password", "auth.Me", "auth.Logout"})


@auth_bp.route("/auth/login")
class Login(MethodView):
    @auth_bp.arguments(LoginIn)
    @auth_bp.response(200, TokenOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange username and password for a bearer token. One answer for an unknown username, a disabled
        account and a wrong password; lock-out and throttling per username and address; every attempt is in the
        login log (登录日志)."""
        ctx = current_context()
        try:
            account = accounts.verify_credentials(
                ctx, body["username"], body["password"], address=request.remote_addr or "unknown", channel="api"
            )
        except AuthError:
            keep_writes_on_error()  # the failure count and the login log must survive the failed request
            raise
        if second_factor.required(ctx, account):
            keep_writes_on_error()  # the login log keeps the attempt
            raise second_factor.SecondFactorRequiredError(
                "this account signs in with a security key: create an API token on the page 安全密钥 "
                "(/account/security-key) after a key check",
                details={"reason": "api_token_from_page"},
                message_zh="该账号须使用安全密钥登录：请在网页“安全密钥”中验证密钥后生成 API 令牌",
            )
        token = tokens.issue_token(ctx, account)
        return {
            "token": token,
            "token_type": "Bearer",
            "must_change_password": account.must_change_password,
            "account": account,
        }


@auth_bp.route("/auth/logout")
class Logout(MethodView):
    @auth_bp.response(200, RevokedOut)
    def post(self) -> Any:
        """Revoke the token used for this request (the login log keeps the sign-out)."""
        ctx = current_context()
        accounts.record_logout(ctx, request.remote_addr, "api")
        tokens.logout(ctx.session, tokens.bearer_token(request.headers) or "")
        return {"revoked": True}


@auth_bp.route("/auth/password")
class Password(MethodView):
    @auth_bp.arguments(PasswordIn)
    @auth_bp.response(200, ChangedOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Change the password (required at first login)."""
        accounts.change_password(current_context(), body["old_password"], body["new_password"])
        return {"changed": True}


@auth_bp.route("/me")
class Me(MethodView):
    @auth_bp.response(200, MeOut)
    def get(self) -> Any:
        """The calling account and its unit."""
        ctx = current_context()
        return {
            "account": ctx.session.get(Account, ctx.user.account_id),
            "unit": ctx.session.get(Unit, ctx.user.unit_id),
        }


@units_bp.route("/units")
class Units(MethodView):
    @units_bp.response(200, UnitsOut)
    def get(self) -> Any:
        """Units in the caller's subtree."""
        return {"units": units.in_scope(current_context())}

    @units_bp.arguments(UnitIn)
    @units_bp.response(201, UnitOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Create one unit below the caller's unit (system administrators)."""
        return units.create_unit(current_context(), body)


@units_bp.route("/units/import")
class UnitsImport(MethodView):
    @units_bp.response(200, UnitImportOut)
    def post(self) -> Any:
        """Import a unit tree from CSV (body: text/csv, UTF-8); all rows valid or nothing imported."""
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("the CSV must be UTF-8") from None
        return units.import_units_csv(current_context(), text)


@units_bp.route("/review-chains/<stage>")
class ReviewChains(MethodView):
    @units_bp.arguments(ReviewChainIn)
    @units_bp.response(200, ReviewChainOut)
    def put(self, body: dict[str, Any], stage: str) -> Any:
        """Set the review levels after the school for a school stage or a 办学类型 code (province administrators)."""
        units.set_review_chain(current_context(), stage, body["levels"])
        return {"stage": stage, "levels": body["levels"]}


@accounts_bp.route("/accounts")
class Accounts(MethodView):
    @accounts_bp.response(200, AccountsOut)
    def get(self) -> Any:
        """Accounts of the caller's subtree (administrators)."""
        return {"accounts": accounts.in_scope(current_context())}

    @accounts_bp.arguments(AccountIn)
    @accounts_bp.response(201, AccountOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an account (the unit's system administrator, or the one above for administrators)."""
        ctx = current_context()
        unit = unit_in_scope(ctx, body.pop("unit_id"))
        return accounts.create_account(ctx, unit=unit, **body)


@accounts_bp.route("/accounts/<int:account_id>/actions")
class AccountActions(MethodView):
    @accounts_bp.arguments(AccountActionIn)
    @accounts_bp.response(200, AccountActionOut)
    def post(self, body: dict[str, Any], account_id: int) -> Any:
        """unlock | reset_password | disable | restore | set_role (with a reason; audited). A reset answers a
        one-time password (shown once) that must be changed at the next login; a reset, disable or role change
        ends every open session of the account."""
        ctx = current_context()
        if body["action"] == "reset_password":
            account, password = accounts.reset_password(ctx, account_id, body["reason"])
            account.one_time_password = password  # answered once, never stored
            return account
        if body["action"] == "set_role":
            if not body["role"]:
                raise BadRequestError("set_role needs a role")
            return accounts.change_role(ctx, account_id, body["role"], body["reason"])
        return accounts.set_account_state(ctx, account_id, body["action"], body["reason"])


BLUEPRINTS = (auth_bp, units_bp, accounts_bp)
