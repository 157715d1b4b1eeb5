"""Every page answers for a user who may open it, in Chinese, with the help link; the login, logout, CSRF and
first-login password rules."""

from __future__ import annotations

import pytest

from tests.provincial.web.conftest import csrf_of, login, post


def test_every_page_needs_a_login_and_the_login_page_is_chinese(site):
    c = site.client()
    r = c.get("/teachers")
    assert r.status_code == 302 and r.location.startswith("/login?next=")
    page = c.get("/login")
    assert page.status_code == 200 and "登录" in page.text and 'name="csrf_token"' in page.text


def test_a_wrong_password_answers_like_an_unknown_user(site):
    c = site.client()
    token = csrf_of(c.get("/login").text)
    wrong = c.post("/login", data={"username": "school_info", "password": "nope-nope-1A", "csrf_token": token})
    unknown = c.post("/login", data={"username": "nobody", "password": "nope-nope-1A", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text


def test_a_form_without_its_csrf_token_is_refused(site):
    c = site.client()
    r = c.post("/login", data={"username": "school_info", "password": "x"})
    assert r.status_code == 400 and "CSRF" in r.text
    c = site.client("school_info")
    r = c.post(f"/teachers/{site.teachers['draft']}/submit")
    assert r.status_code == 400 and "页面已过期" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/teachers",
        "/teachers/new",
        "/review",
        "/changes",
        "/imports-exports",
        "/transfers",
        "/transfers/new",
        "/units",
        "/audit-log",
        "/help/",
        "/help/school",
        "/account/password",
        "/pickers/division?q=4401",
    ],
)
def test_pages_of_a_school_clerk_render_in_chinese(site, path):
    c = site.client("school_info")
    r = c.get(path)
    assert r.status_code == 200, r.text[:300]
    assert 'lang="zh-CN"' in r.text and "教师系统" in r.text


def test_security_headers_on_every_answer(site):
    c = site.client("school_info")
    for path in ("/", "/api/v1/teachers", "/static/app.css", "/no/such/page"):
        r = c.get(path)
        r.close()  # a static file's answer holds the file open until closed
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        # pages load the node's own scripts; JSON answers load nothing at all
        assert ("default-src 'none'" if path.startswith("/api/") else "script-src 'self'") in csp
        assert r.headers.get("X-Content-Type-Options") == "nosniff"


def test_errors_of_pages_are_chinese_pages_and_of_the_api_json(site):
    c = site.client("school_info")
    page = c.get("/no/such/page")
    assert page.status_code == 404 and "页面或数据不存在" in page.text and page.content_type.startswith("text/html")
    api = c.get("/api/v1/no/such/thing")
    assert api.status_code == 401 and api.json["code"] == "unauthenticated"  # the API asks for its token first


def test_logout_ends_the_session_and_the_login_log_keeps_it(site):
    from sqlalchemy import select

    from common.db import session_scope
    from common.http import runtime_of
    from provincial_node.audit_trail.models import LoginEvent

    def sign_outs() -> int:
        with session_scope(runtime_of(site.app).session_factory) as s:
            return len(
                s.scalars(
                    select(LoginEvent.id).where(
                        LoginEvent.username == "school_info",
                        LoginEvent.outcome == "logout",
                        LoginEvent.channel == "web",
                    )
                ).all()
            )

    before = sign_outs()
    c = site.client("school_info")
    assert c.get("/teachers").status_code == 200
    r = post(c, "/logout")
    assert r.status_code == 302
    assert c.get("/teachers").status_code == 302
    assert sign_outs() == before + 1  # 退出登录 in the login log


def test_the_first_login_asks_for_a_new_password_first(site):
    c = site.client()
    page = c.get("/login")
    # a fresh account must change its initial password before anything else
    from common.db import session_scope
    from provincial_node.accounts import accounts
    from provincial_node.accounts.models import Unit
    from provincial_node.context import runtime
    from tests.helpers import ctx
    from tests.provincial.conftest import PASSWORD

    with session_scope(runtime(site.app).session_factory) as db:
        accounts.create_account(
            ctx(db),
            username="fresh_clerk",
            real_name="新员工",
            unit=db.get(Unit, site.ids["2144000001"]),
            role="query",
            password=PASSWORD,
        )
    r = c.post("/login", data={"username": "fresh_clerk", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 302 and r.location.endswith("/account/password")
    assert c.get("/teachers").location.endswith("/account/password")
    bad = post(
        c,
        "/account/password",
        {"old_password": PASSWORD, "new_password": "short", "new_password2": "short"},
        token_from="/account/password",
    )
    assert bad.status_code == 422 and "至少" in bad.text
    ok = post(
        c,
        "/account/password",
        {"old_password": PASSWORD, "new_password": "Fresh-pass-2026", "new_password2": "Fresh-pass-2026"},
        token_from="/account/password",
    )
    assert ok.status_code == 302
    assert c.get("/teachers").status_code == 200
    login(site.client(), "fresh_clerk", "Fresh-pass-2026")
