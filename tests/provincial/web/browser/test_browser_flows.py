"""The issue's real-browser flows, as the people do them (Chromium, a served node, clicks and typing):

* a school clerk registers a teacher, fills 基本信息 (code pickers with search, the 行政区划 picker) and one
  multi-record group (岗位聘任, with its 岗位类别 → 岗位等级 cascade), submits; the school's reviewer approves; the
  county's reviewer returns it with a reason; the clerk sees why, fixes, resubmits; the school and the county
  approve, the file is effective and waits in the outbox for the national node;
* a teacher logs in and adds new information (a 国内培训 record), which goes to review;
* an upload with one bad row shows that row's error on the page.

Slow: a server process and a browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files.models import Teacher
from tests.factories import resident_id
from tests.provincial.conftest import PASSWORD

pytestmark = pytest.mark.slow

NEW_ID = resident_id("440106", "19900512", "702")  # a woman born 1990-05-12


def login(page: Page, province, username: str, password: str = PASSWORD) -> None:
    page.goto(province.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    expect(page.locator("[aria-label='主菜单']")).to_be_visible()


def logout(page: Page) -> None:
    page.click("header button:has-text('退出')")
    expect(page).to_have_url(re.compile(r"/login"))


def pick(page: Page, name: str, value: str) -> None:
    page.select_option(f"[name='{name}']", value)


def test_register_fill_submit_reject_fix_and_approve(page: Page, province):
    page.on("dialog", lambda d: d.accept())  # 报送审核 asks for confirmation
    login(page, province, "clerk")
    page.click("nav >> text=新教师入职")
    page.fill("#f-XM", "王晓红")
    page.fill("#f-SFZJH", NEW_ID)
    page.click("button:has-text('建立档案')")
    expect(page.locator(".alert-success")).to_contain_text("已建档")
    expect(page).to_have_url(re.compile(r"/groups/JBXX$"))

    # 基本信息: code lists chosen from pickers; 民族 searched through its filter box; 籍贯 through the
    # 行政区划 picker (type a place name, click the suggestion)
    pick(page, "f.XBM", "2")
    page.fill("#i-f-CSRQ", "1990-05-12")
    page.locator("#i-f-MZM").locator("xpath=preceding-sibling::input[@data-filter-box]").fill("汉族")
    expect(page.locator("#i-f-MZM option[value='03']")).to_be_hidden()
    pick(page, "f.MZM", "01")
    page.fill("#i-f-JG", "天河")
    page.click("[data-pick-for='f.JG'][data-pick-code='440106']")
    expect(page.locator("#i-f-JG")).to_have_value("440106")
    for name, value in {
        "f.GJDQM": "156", "f.ZGXLM": "21", "f.ZGXWCCM": "4", "f.JZGLYM": "11", "f.JZGLBM": "11", "f.SFZB": "1",
        "f.QDHTQKM": "1", "f.SFQRZSFLZYBY": "1", "f.SFSGTJZYPYPX": "0", "f.SFYTSJYCYZS": "0",
        "f.XXJSYYNLM": "2", "f.SFSMFSFS": "0", "f.SFCJJCFWXM": "0", "f.SFTJJS": "0", "f.SFXJGGJS": "0",
        "f.SFXLJKJYJS": "0", "f.HYZKM": "10", "f.JKZKM": "1",
    }.items():  # fmt: skip
        pick(page, name, value)
    page.select_option("#i-f-ZZMMM", ["13"])
    page.fill("#i-f-CJGZNY", "2013-09")
    page.fill("#i-f-JBXNY", "2013-09")
    page.click("button:has-text('保存')")
    expect(page.locator(".alert-success")).to_contain_text("已保存基本信息")
    teacher_url = page.url.split("#")[0]

    # 岗位聘任: one record; choosing 岗位类别 narrows 岗位等级 (cascade)
    page.click("#g-GWPR a:has-text('填写')")
    pick(page, "r.0.GWLBM", "1")
    expect(page.locator("[name='r.0.GWDJM'] option[value='110']")).to_be_enabled()
    pick(page, "r.0.GWDJM", "110")
    page.fill("[name='r.0.PRKSNY']", "2016-01")
    pick(page, "r.0.SFJRQTGW", "0")
    page.select_option("[name='r.0.XJZWM']", ["00"])
    page.click("button:has-text('保存')")
    expect(page.locator(".alert-success")).to_contain_text("已保存岗位聘任")
    page.click("button:has-text('报送审核')")
    expect(page.locator(".alert-success")).to_contain_text("已报送")
    logout(page)

    def review(who: str, decision: str, reason: str = "") -> None:
        login(page, province, who)
        page.click("nav >> text=审核")
        page.click("a:has-text('王晓红'), tr:has-text('王晓红') a")
        if decision == "approve":
            page.click("button:has-text('审核通过')")
            expect(page.locator(".alert-success")).to_contain_text("已审核通过")
        else:
            page.fill("#reject-reason", reason)
            page.click("button:has-text('退回修改')")
            expect(page.locator(".alert-success")).to_contain_text("已退回")
        logout(page)

    review("checker", "approve")
    review("county", "reject", "请核对参加工作年月")

    # the clerk finds it in the to-do list, reads why, fixes and submits again
    login(page, province, "clerk")
    page.click("[data-todo] a:has-text('被退回待修改的档案')")
    page.click("tr:has-text('王晓红') a")
    expect(page.locator("[data-rejection]")).to_contain_text("请核对参加工作年月")
    page.click("#g-JBXX a:has-text('修改')")
    page.fill("#i-f-CJGZNY", "2012-09")
    page.click("button:has-text('保存')")
    expect(page.locator(".alert-success")).to_contain_text("已保存")
    page.click("button:has-text('报送审核')")
    expect(page.locator(".alert-success")).to_contain_text("已报送")
    logout(page)
    review("checker", "approve")
    review("county", "approve")

    login(page, province, "clerk")
    page.goto(teacher_url)
    expect(page.locator(".status-effective").first).to_be_visible()
    session, engine = province.db()
    with session as db:
        t = db.scalar(select(Teacher).where(Teacher.name == "王晓红"))
        assert t.status == "effective" and t.data["JBXX"]["CJGZNY"] == "2012-09"
        assert t.data["GWPR"][0]["GWDJM"] == "110" and t.data["JBXX"]["JG"] == "440106"
        outbox = db.scalars(select(OutboxEntry).where(OutboxEntry.teacher_id == t.id)).all()
        assert len(outbox) == 1 and outbox[0].batch_seq is None  # waiting for the next sync round
    engine.dispose()


def test_a_teacher_adds_new_information_which_goes_to_review(page: Page, province):
    page.on("dialog", lambda d: d.accept())
    login(page, province, province.teacher_login)
    page.click("nav >> text=我的档案")
    page.click("#g-GNPX a:has-text('填写')")
    page.fill("[name='r.0.PXND']", "2025")
    pick(page, "r.0.PXLBM", "2")
    page.fill("[name='r.0.PXXMMC']", "省级骨干教师培训")
    pick(page, "r.0.PXFSM", "1")
    page.fill("[name='r.0.PXHDXS']", "72")
    page.fill("[name='r.0.PXHDXF']", "9")
    page.click("button:has-text('保存')")
    expect(page.locator(".alert-success")).to_contain_text("已保存国内培训")
    expect(page.locator("#g-GNPX")).to_contain_text("省级骨干教师培训")
    page.click("button:has-text('报送审核')")
    expect(page.locator(".alert-success")).to_contain_text("已报送")
    expect(page.locator(".status-submitted").first).to_be_visible()


def test_an_upload_with_one_bad_row_shows_that_rows_error(page: Page, province):
    login(page, province, "clerk")
    page.click("nav >> text=导入导出")
    session, engine = province.db()
    with session as db:
        number = db.get(Teacher, province.teachers["draft"]).teacher_number
    engine.dispose()
    header = page.request.get(province.url + "/templates/LXFS.csv").body()
    body = header + f"{number},广州市天河区,020-1234567,13800138000,a@b.cn,\n".encode()
    body += b"4400000000999,x,,,,\n"
    page.select_option("#imp-group", "LXFS")
    page.set_input_files("#imp-file", {"name": "联系方式.csv", "mimeType": "text/csv", "buffer": body})
    page.click("button:has-text('上传并导入')")
    expect(page).to_have_url(re.compile(r"/imports/\d+$"))  # the import runs as a background task
    errors = page.locator("[data-import-errors] tbody tr")
    expect(errors).to_have_count(1, timeout=30_000)  # the page follows the task and shows its result
    expect(errors.first).to_contain_text("4400000000999")
    expect(errors.first.locator("td").first).to_have_text("3")
    expect(page.locator("[data-import-result] .alert")).to_contain_text("失败 1")
