"""The provincial node's pages (网页端): the shell every area's pages live in.

* Browser sessions (:mod:`provincial_node.accounts.sessions`): an HttpOnly, SameSite=Lax cookie (Secure when
  ``TMIS_WEB_SECURE_COOKIES``), idle timeout and absolute lifetime; separate from the API's bearer tokens.
* CSRF: every POST to a page carries the form's token (Flask-WTF ``CSRFProtect``); the JSON API (bearer
  tokens, no cookies) is not a CSRF target and is left out.
* Security headers on every answer (:mod:`.headers`): a CSP that allows no inline script or style, no framing,
  nosniff.
* Login, logout, the first-login password change and the lock-out message (:mod:`.shell`); the home page of
  待办事项, 通知公告 and two charts; the help pages rendered from ``docs/guide/*.md``; error pages in Chinese.
* The menu for the user's level and role (:mod:`.menu`); the operator's sync page (:mod:`.ops`).

Areas contribute their pages as blueprints (``<area>/views.py`` with ``templates/<area>/``); the shell resolves
the user before every page (:mod:`.session`), so an area's view only calls ``current_context()`` and its
services. Every core flow works without JavaScript; ``static/app.js`` improves some (pickers, cascades,
confirmations, charts, progress).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from common.http import PageErrors, use_page_errors
from provincial_node.context import ProvinceRuntime
from provincial_node.web import errors, headers, ops, second_factor, session, shell
from provincial_node.web.templating import install_templating


def register_web(app: Flask, runtime: ProvinceRuntime, blueprints: Iterable[Blueprint]) -> None:
    """The pages: session cookie, CSRF, headers, templates, the shell's and the areas' blueprints."""
    config = runtime.config
    app.config.update(
        SECRET_KEY=session.secret_key(config),
        SESSION_COOKIE_NAME="tmis_csrf",  # Flask's own cookie only carries the CSRF secret
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.web_secure_cookies,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked for pages only (session.before_page)
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the page session
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
    )
    csrf = CSRFProtect(app)
    install_templating(app)
    session.install(app, csrf)
    headers.install(app)
    use_page_errors(app, PageErrors(wants_page=session.is_page_request, render=errors.render))
    for bp in (shell.bp, ops.bp, second_factor.bp, *blueprints):
        app.register_blueprint(bp)
