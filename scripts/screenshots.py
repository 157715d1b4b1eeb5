"""Take the user guide's screenshots (docs/screenshots/*.png) from a running demo, as its users see it.

Start the demo first (``scripts/demo``), then ``scripts/screenshots``. Each picture is a page opened by the demo
account of the role the guide chapter is for (Guangdong, province 44), in Chromium at 1360×900 with the Chinese
locale. Before writing anything the script checks that Chinese text renders with a real CJK font (not the empty
boxes of a missing font); it refuses otherwise. Nothing in the demo is changed except what a user's page view
records (the audit trail of reads), one import attempt whose only row is refused and one failed login (for the
login log's picture).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"

# Chinese text must not draw as the "missing glyph" box: compare the pixels of a common character with those of
# a private-use code point no font has.
TOFU_CHECK = """() => {
  const font = getComputedStyle(document.body).fontFamily;
  function draw(text) {
    const c = document.createElement("canvas"); c.width = 64; c.height = 32;
    const g = c.getContext("2d"); g.font = "24px " + font; g.fillText(text, 4, 24);
    return Array.from(g.getImageData(0, 0, 64, 32).data).join(",");
  }
  return draw("教") !== draw("\\uE000");
}"""


def login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/login" in page.url:
        raise SystemExit(f"cannot log in as {username}: is the demo running, and the password right?")


def shot(page: Page, out: Path, name: str, full: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  ({page.title()})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8144", help="the demo's province 44 (default %(default)s)")
    ap.add_argument("--password", default="Demo-changed-2026", help="the demo accounts' password")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--chromium", default=CHROMIUM)
    args = ap.parse_args()
    if not Path(args.chromium).is_file():
        print(f"Chromium not found at {args.chromium}: apt-get install -y chromium fonts-noto-cjk", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    base, pw = args.url.rstrip("/"), args.password
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--lang=zh-CN"])

        def person(username: str | None) -> Page:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 900})
            page = context.new_page()
            if username:
                login(page, base, username, pw)
            return page

        page = person(None)
        page.goto(base + "/login")
        if not page.evaluate(TOFU_CHECK):
            print("Chinese text does not render (no CJK font): apt-get install -y fonts-noto-cjk", file=sys.stderr)
            return 3
        print(f"screenshots of {base} into {args.out}")
        shot(page, args.out, "login")

        clerk = person("info2144000001")
        shot(clerk, args.out, "home_school")
        clerk.goto(base + "/teachers")
        shot(clerk, args.out, "teacher_list")
        clerk.goto(base + "/teachers?status=draft")
        clerk.click("table tbody tr a")
        clerk.click("#g-JBXX a.btn")
        clerk.fill("#i-f-CSRQ", "1970-01-01")  # not the birth date in the ID number: the error shows next to it
        clerk.click("button:has-text('保存')")
        clerk.locator("[data-field-error]").first.scroll_into_view_if_needed()
        shot(clerk, args.out, "group_form")
        clerk.goto(base + "/imports-exports")
        clerk.select_option("#imp-group", "LXFS")
        body = clerk.request.get(base + "/templates/LXFS.csv").body()  # the template's header row
        body += "4400000009999,广州市天河区,020-1234567,1380013800,a@b,\n".encode()  # refused: no such teacher
        clerk.set_input_files("#imp-file", {"name": "联系方式.csv", "mimeType": "text/csv", "buffer": body})
        clerk.click("button:has-text('上传并导入')")
        clerk.wait_for_selector("[data-import-result]", timeout=60_000)  # the import runs as a background task
        shot(clerk, args.out, "import_errors")

        county = person("infoadmin440106")
        county.goto(base + "/review")
        shot(county, args.out, "review_queue")
        county.goto(base + "/changes")
        county.click("table tbody tr a")
        shot(county, args.out, "change_detail")
        county.goto(base + "/transfers")
        county.click("table tbody tr a")
        shot(county, args.out, "transfer_detail")
        county_admin = person("sysadmin440106")
        county_admin.goto(base + "/audit-log")
        shot(county_admin, args.out, "audit_log")

        admin = person("admin44")
        admin.goto(base + "/units")
        shot(admin, args.out, "units")
        admin.goto(base + "/sync")
        shot(admin, args.out, "sync")
        admin.goto(base + "/accounts")
        shot(admin, args.out, "accounts")
        school_admin = person("sysadmin2144000001")  # the school's system administrator keeps its teachers' accounts
        school_admin.goto(base + "/accounts")
        accounts_page = school_admin.content()  # a teacher's account: its username is the teacher number
        wrong = person(None)  # one failed attempt, so the login log shows what a failure looks like
        wrong.goto(base + "/login")
        wrong.fill("#username", "info2144000001")
        wrong.fill("#password", "not-the-password")
        wrong.click("button[type=submit]")
        wrong.wait_for_load_state("networkidle")
        admin.goto(base + "/login-log")
        shot(admin, args.out, "login_log")
        clerk.goto(base + "/my-logins")  # the clerk's own records, the failed attempt above among them
        shot(clerk, args.out, "my_logins")
        teacher_login = re.search(r"<td>(\d{12}[\dX])</td>", accounts_page)
        if teacher_login is None:
            print("no teacher account in the demo: skipped teacher_file", file=sys.stderr)
        else:
            teacher = person(teacher_login.group(1))
            teacher.goto(base + "/me/file")
            shot(teacher, args.out, "teacher_file")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
