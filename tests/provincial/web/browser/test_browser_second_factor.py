"""The security key in a real browser: Chromium's virtual WebAuthn authenticator (through a CDP session) stands
in for the USB key. A school's information administrator, required by the province to use a key, enrols one
with the code the county gave, signs in with it, exports, is asked for the key again when the last check is
old (step-up), and without the key gets no export at all. Slow: a server process and a browser."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from provincial_node.accounts import second_factor as sf
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account, WebSession
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD
from tests.provincial.web.browser.conftest import TMIS

pytestmark = pytest.mark.slow


def _code_from_the_county(province) -> str:
    session, engine = province.db()
    with session as db:
        county = db.scalar(select(Account).where(Account.username == "countyadmin"))
        clerk = db.scalar(select(Account).where(Account.username == "clerk"))
        code = sf.issue_enrolment_code(ctx(db, actor_for(db, county)), clerk.id)
    engine.dispose()
    return code


def _age_key_checks(province, minutes: int) -> None:
    session, engine = province.db()
    with session as db:
        for ws in db.scalars(select(WebSession).where(WebSession.second_factor_at.is_not(None))):
            ws.second_factor_at -= dt.timedelta(minutes=minutes)
    engine.dispose()


def _virtual_key(page: Page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def _login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def _export(page: Page, base: str):
    page.goto(base + "/imports-exports")
    page.fill("#export [name='reason']", "年度教师队伍核对")
    page.select_option("#export [name='groups']", "JBXX")
    page.select_option("#export [name='format']", "csv")
    with page.expect_download() as download:
        page.click("#export button:has-text('导出')")
    return download.value


def test_enrol_a_key_sign_in_with_it_and_step_up_for_an_export(page: Page, province):
    subprocess.run(
        [TMIS, "province", "second-factor", "roles", "--set", "sysadmin,infoadmin"],
        env={**__import__("os").environ, **province.env}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    base = province.url.replace("127.0.0.1", "localhost")  # the keys are bound to the host name (rp id localhost)
    code = _code_from_the_county(province)
    cdp, authenticator = _virtual_key(page)

    _login(page, base, "clerk")
    expect(page).to_have_url(re.compile(r"/account/security-key"))  # held until a key is enrolled
    page.fill("[data-webauthn-code]", code)
    page.fill("[data-webauthn-name]", "天河一小信息员 U盾")
    page.click("[data-webauthn='register'] [data-webauthn-start]")
    codes = page.locator("[data-recovery-list] li")
    expect(codes).to_have_count(10)
    page.click("[data-continue]")
    expect(page).to_have_url(re.compile(r"^[^?]*/$"))

    page.click("header button:has-text('退出')")
    _login(page, base, "clerk")
    expect(page).to_have_url(re.compile(r"/login/key"))
    page.click("[data-webauthn='login'] [data-webauthn-start]")
    expect(page).to_have_url(re.compile(r"^[^?]*/$"))  # the key check passed: on to the home page
    assert _export(page, base).suggested_filename.endswith(".csv")

    _age_key_checks(province, minutes=30)  # the last key check is now half an hour old
    page.goto(base + "/imports-exports")
    page.fill("#export [name='reason']", "年度教师队伍核对")
    page.select_option("#export [name='groups']", "JBXX")
    page.select_option("#export [name='format']", "csv")
    page.click("#export button:has-text('导出')")
    expect(page).to_have_url(re.compile(r"/login/key\?.*step_up=1"))
    expect(page.locator(".alert-warning").first).to_contain_text("再次验证安全密钥")
    page.click("[data-webauthn='login'] [data-webauthn-start]")
    expect(page).to_have_url(re.compile(r"^[^?]*/imports-exports$"))  # back on the page, verified
    assert _export(page, base).suggested_filename.endswith(".csv")

    # without the key: the check cannot be passed, and the export page is not reached
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    page.click("header button:has-text('退出')")
    _login(page, base, "clerk")
    expect(page).to_have_url(re.compile(r"/login/key"))
    page.click("[data-webauthn='login'] [data-webauthn-start]")
    expect(page.locator("[data-webauthn-message]")).to_contain_text("没有完成验证", timeout=90_000)
    held = page.request.get(base + "/imports-exports", max_redirects=0)  # the session's cookie, no key check
    assert held.status == 302 and "/login/key" in held.headers["location"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.content()).group(1)
    refused = page.request.post(
        base + "/exports",
        form={"csrf_token": token, "unit_id": "1", "reason": "x", "format": "csv"},
        max_redirects=0,
    )
    assert refused.status == 302 and "/login/key" in refused.headers["location"]  # no file without the key
