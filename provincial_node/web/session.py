"""Who is at the browser: the page session cookie, resolved before every page request.

Pages are everything outside ``/api/`` and ``/static/``. Public pages (login, help, static files, health)
need no session; every other page needs a live session (else → the login page, remembering where the user
was going) and, while the account must change its initial or reset password, only the password page and
logout are open. The request's :class:`~provincial_node.context.ProvinceContext` is set here, exactly as the
API shell does for tokens, so an area's view just calls ``current_context()``.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, g, redirect, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from common.db import utcnow
from common.errors import BadRequestError
from common.http import get_session
from common.keyfile import read_private_key, write_private_key
from provincial_node.accounts import second_factor, sessions
from provincial_node.accounts.access import actor_for
from provincial_node.config import ProvincialConfig
from provincial_node.context import runtime, set_current_context

COOKIE = "tmis_session"
PUBLIC_ENDPOINTS = frozenset(
    {"web.login", "web.help", "web.help_index", "web.help_screenshot", "static", "health", "web.static"}
)
WHILE_PASSWORD_MUST_CHANGE = frozenset({"web.password", "web.logout", "web.help", "web.help_index"})
# while the key check of an account that uses a security key is still due (after the password)
WHILE_SECOND_FACTOR_DUE = frozenset(
    {
        "web.logout",
        "web.help",
        "web.help_index",
        "second_factor.key_check",
        "second_factor.key_options",
        "second_factor.key_verify",
        "second_factor.recovery",
        "second_factor.keys",
        "second_factor.register_options",
        "second_factor.register_verify",
    }
)


def secret_key(config: ProvincialConfig) -> bytes:
    """The key signing the pages' CSRF tokens: a 0600 file made once (``TMIS_WEB_SECRET_KEY_PATH``); tests get a
    random one."""
    if config.testing and config.web_secret_key_path is None:
        return secrets.token_bytes(32)
    path = Path(config.web_secret_key_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_key(path, secrets.token_hex(32).encode())
    return read_private_key(path)


def is_page_request() -> bool:
    path = request.path  # the JSON API, static files, probes and the Prometheus endpoint are not pages
    return not (path in ("/health", "/metrics") or path.startswith(("/api/", "/static/", "/health/")))


def safe_next(target: str | None) -> str | None:
    """A local path to return to after login (never another site)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def install(app: Flask, csrf: CSRFProtect) -> None:
    @app.before_request
    def before_page() -> Response | None:
        if not is_page_request():
            return None
        if request.method == "POST":
            try:
                csrf.protect()
            except CSRFError as e:
                raise BadRequestError(
                    f"the form's CSRF token is missing or invalid: {e.description}",
                    message_zh="页面已过期或表单校验失败（CSRF），请刷新页面后重新提交",
                ) from None
        rt = runtime()
        db = get_session()
        now = utcnow()
        account = web_session = None
        token = request.cookies.get(COOKIE)
        if token:
            live = sessions.resume(db, token, now=now, idle=rt.settings.token_idle)
            if live is not None:
                account, web_session = live
        g.page_account, g.page_session = account, web_session
        actor = None
        if account is not None:
            needs_key = second_factor.required(rt.context(db, None, now), account)
            actor = dataclasses.replace(
                actor_for(db, account),
                second_factor_required=needs_key,
                second_factor_at=web_session.second_factor_at if needs_key else None,
            )
        set_current_context(rt.context(db, actor, now))
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if account is None:
            nxt = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("web.login", next=nxt))
        if account.must_change_password and request.endpoint not in WHILE_PASSWORD_MUST_CHANGE:
            return redirect(url_for("web.password"))
        if (
            actor.second_factor_required
            and web_session.second_factor_at is None
            and request.endpoint not in WHILE_SECOND_FACTOR_DUE
        ):
            nxt = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("second_factor.key_check", next=nxt))
        return None


def set_cookie(response: Response, token: str, config: ProvincialConfig) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=config.token_lifetime_minutes * 60,
        httponly=True,
        secure=secure_cookies(config),
        samesite="Lax",
        path="/",
    )


def clear_cookie(response: Response, config: ProvincialConfig) -> None:
    response.delete_cookie(COOKIE, path="/", secure=secure_cookies(config), httponly=True, samesite="Lax")


def secure_cookies(config: ProvincialConfig) -> bool:
    """Cookies only over HTTPS: asked for, or implied by a TLS proxy in front (TMIS_PROXY_HOPS)."""
    return config.web_secure_cookies or config.proxy_hops > 0
