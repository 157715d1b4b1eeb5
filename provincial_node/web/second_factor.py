"""The second factor in the pages (安全密钥): the key check after the password, enrolment with the code from the
unit above, recovery codes, step-up before sensitive actions, and API tokens for accounts that use a key.

WebAuthn needs the browser's ``navigator.credentials`` (``static/app.js``); the challenge of each ceremony is
kept in the page session (``web_session.challenge``), never in the cookie. A recovery code works without
JavaScript. Services decide (:mod:`provincial_node.accounts.second_factor`); this module only carries the
ceremony between the browser and them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from common.errors import AuthError, ConflictError, ValidationError
from common.http import keep_writes_on_error
from provincial_node.accounts import second_factor as sf
from provincial_node.accounts import tokens
from provincial_node.accounts.models import Account, SecurityKey
from provincial_node.context import current_context, runtime
from provincial_node.web.session import safe_next

bp = Blueprint("second_factor", __name__)


def site() -> sf.WebAuthnSite:
    config = runtime().config
    return sf.WebAuthnSite(config.webauthn_rp_id, "全国教师管理信息系统", config.webauthn_origins)


def _account() -> Account:
    return g.page_account


def _web_session() -> Any:
    return g.page_session


def _take_challenge() -> bytes | None:
    """The challenge of the ceremony in progress (used once; five minutes at most)."""
    ws = _web_session()
    challenge, at = ws.challenge, ws.challenge_at
    ws.challenge, ws.challenge_at = None, None
    ctx = current_context()
    if challenge is None or at is None or ctx.now - at > sf.CHALLENGE_VALID:
        return None
    return challenge


def _keep_challenge(challenge: bytes) -> None:
    ws = _web_session()
    ws.challenge, ws.challenge_at = challenge, current_context().now


def _verified() -> None:
    ws = _web_session()
    ws.second_factor_at = current_context().now


# --- the key check (login and step-up) ---------------------------------------------------------------------


@bp.get("/login/key")
def key_check() -> Any:
    """After the password (or for a step-up): touch the security key, or type a recovery code."""
    ctx = current_context()
    account = _account()
    target = safe_next(request.args.get("next")) or url_for("web.home")
    if not sf.active_keys(ctx.session, account.id):
        return redirect(url_for(".keys", next=target))
    return render_template("second_factor_check.html", next=target, step_up=bool(request.args.get("step_up")))


@bp.post("/login/key/options")
def key_options() -> Any:
    ctx = current_context()
    options, challenge = sf.authentication_options(ctx, _account(), site())
    _keep_challenge(challenge)
    return jsonify(options)


@bp.post("/login/key/verify")
def key_verify() -> Any:
    ctx = current_context()
    challenge = _take_challenge()
    body = request.get_json(silent=True) or {}
    if challenge is None:
        return jsonify(ok=False, message="验证已超时，请重试"), 400
    try:
        sf.finish_authentication(ctx, _account(), body.get("credential"), challenge, site())
    except AuthError as e:
        keep_writes_on_error()  # the refusal stays in the audit trail
        return jsonify(ok=False, message=e.message_zh or "安全密钥验证未通过"), 401
    _verified()
    return jsonify(ok=True, next=safe_next(body.get("next")) or url_for("web.home"))


@bp.post("/login/recovery")
def recovery() -> Any:
    """A recovery code instead of the key (no JavaScript needed)."""
    ctx = current_context()
    target = safe_next(request.form.get("next")) or url_for("web.home")
    try:
        sf.use_recovery_code(ctx, _account(), request.form.get("code") or "")
    except AuthError as e:
        keep_writes_on_error()
        flash(e.message_zh or "恢复码不正确", "danger")
        return redirect(url_for(".key_check", next=target))
    _verified()
    flash("已用一个恢复码登录。请尽快请上一级单位的系统管理员注销丢失的密钥、发放新的登记码。", "warning")
    return redirect(target)


# --- my keys: enrolment with the code from the unit above ------------------------------------------------


@bp.get("/account/security-key")
def keys() -> str:
    ctx = current_context()
    account = _account()
    return render_template(
        "second_factor_keys.html",
        keys=sf.active_keys(ctx.session, account.id),
        required=sf.required(ctx, account),
        next=safe_next(request.args.get("next")) or "",
        verified=_web_session().second_factor_at is not None,
    )


@bp.post("/account/security-key/options")
def register_options() -> Any:
    ctx = current_context()
    body = request.get_json(silent=True) or {}
    try:
        options, challenge = sf.registration_options(ctx, _account(), str(body.get("code") or ""), site())
    except ValidationError as e:
        keep_writes_on_error()
        return jsonify(ok=False, message=e.errors[0].reason_zh), 422
    _keep_challenge(challenge)
    return jsonify(ok=True, options=options)


@bp.post("/account/security-key/verify")
def register_verify() -> Any:
    ctx = current_context()
    challenge = _take_challenge()
    body = request.get_json(silent=True) or {}
    if challenge is None:
        return jsonify(ok=False, message="登记已超时，请重试"), 400
    try:
        key, codes = sf.finish_registration(
            ctx, _account(), str(body.get("code") or ""), body.get("credential"), challenge, site(),
            str(body.get("name") or ""),
        )  # fmt: skip
    except (ValidationError, ConflictError) as e:
        message = e.errors[0].reason_zh if isinstance(e, ValidationError) else (e.message_zh or "登记未成功")
        return jsonify(ok=False, message=message), 422
    _verified()  # the key was just used
    return jsonify(ok=True, key=key.name, recovery_codes=codes)


@bp.post("/account/security-key/<int:key_id>/revoke")
def revoke_own(key_id: int) -> Any:
    ctx = current_context()
    key = ctx.session.get(SecurityKey, key_id)
    if key is None or key.account_id != _account().id:
        flash("安全密钥不存在。", "danger")
        return redirect(url_for(".keys"))
    sf.require_fresh(ctx, "revoking a security key")
    sf.revoke_key(ctx, key_id, (request.form.get("reason") or "").strip() or "本人注销")
    flash("已注销该安全密钥。", "success")
    return redirect(url_for(".keys"))


@bp.post("/account/recovery-codes")
def new_codes() -> Any:
    ctx = current_context()
    sf.require_fresh(ctx, "new recovery codes")
    codes = sf.new_recovery_codes(ctx, _account())
    return render_template("second_factor_codes.html", codes=codes)


@bp.post("/account/api-token")
def api_token() -> Any:
    """An API token for an account that uses a key: issued only right after a key check (the token carries
    that moment, so the API's step-up window counts from it)."""
    ctx = current_context()
    sf.require_fresh(ctx, "an API token")
    account = _account()
    token = tokens.issue_token(ctx, account, second_factor_at=_web_session().second_factor_at)
    return render_template("second_factor_token.html", token=token, hours=ctx.settings.token_lifetime)


# --- the unit above: enrolment codes and revocations -----------------------------------------------------


@bp.post("/accounts/<int:account_id>/enrolment-code")
def enrolment_code(account_id: int) -> Any:
    ctx = current_context()
    sf.require_fresh(ctx, "an enrolment code")
    code = sf.issue_enrolment_code(ctx, account_id)
    account = ctx.session.get(Account, account_id)
    flash(
        f"{account.username} 的安全密钥登记码：{code}（只显示这一次，{int(sf.ENROLMENT_VALID.total_seconds() // 3600)} "
        "小时内有效；请当面或电话告知本人，本人登录后在“安全密钥”页面登记）。",
        "warning",
    )
    return redirect(url_for("accounts_pages.account_list"))


@bp.post("/security-keys/<int:key_id>/revoke")
def revoke(key_id: int) -> Any:
    ctx = current_context()
    sf.require_fresh(ctx, "revoking a security key")
    key = sf.revoke_key(ctx, key_id, (request.form.get("reason") or "").strip())
    owner = ctx.session.scalar(select(Account.username).where(Account.id == key.account_id))
    flash(f"已注销 {owner} 的安全密钥“{key.name}”。", "success")
    return redirect(url_for("accounts_pages.account_list"))
