"""Every page × every role: who may open it (200), who is refused (403: the role or level may not do this) and
for whom the object does not exist (404: outside the user's subtree — a user cannot probe for what they may not
see). The expected table is written out here from the access rules (docs/security.md), not computed from the
code under test. The order of the checks is the rules' own: no rule for the role and level → 403 first; then an
object outside the subtree → 404; then inside the subtree but outside the rule's scope → 403.

The people (tests/provincial/web/conftest.py): the province (440000), the city 440100, the county 440106 with
its schools 2144000001 (files: draft, submitted, effective + its teacher account) and 2144000002, the other
county 440105 with its school 3444000003 (the file "other")."""

from __future__ import annotations

import pytest

from tests.provincial.web.conftest import PEOPLE, login

WHO = (*PEOPLE, "teacher")

# column order of the rows below
COLUMNS = (
    "province_admin",
    "province_info",
    "city_info",
    "county_admin",
    "county_info",
    "county_query",
    "haizhu_info",
    "school_admin",
    "school_info",
    "school_query",
    "school_training",
    "school2_info",
    "school3_info",
    "teacher",
)
assert set(COLUMNS) == set(WHO)

# page → expected status per person, in COLUMNS order
# PA province_admin, PI province_info, CT city_info, CA county_admin, CI county_info, CQ county_query,
# HZ haizhu_info, SA school_admin, SI school_info, SQ school_query, ST school_training, S2 school2_info,
# S3 school3_info, TE teacher
#                                             PA   PI   CT   CA   CI   CQ   HZ   SA   SI   SQ   ST   S2   S3   TE
EXPECTED = {
    "/":                                      (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/teachers":                              (403, 200, 200, 403, 200, 200, 200, 403, 200, 200, 403, 200, 200, 403),
    "/teachers/new":                          (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 200, 200, 403),
    "/teachers/{effective}":                  (403, 200, 200, 403, 200, 200, 404, 403, 200, 200, 403, 404, 404, 200),
    "/teachers/{other}":                      (403, 200, 200, 403, 404, 404, 200, 403, 404, 404, 403, 404, 200, 404),
    "/teachers/{draft}/groups/JBXX":          (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 404, 404, 404),
    "/teachers/{effective}/groups/NDKH":      (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 404, 404, 200),
    "/teachers/{effective}/history":          (403, 200, 200, 403, 200, 403, 404, 403, 200, 403, 403, 404, 404, 200),
    "/teachers/{effective}/changes/new":      (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 404, 404, 403),
    "/teachers/{effective}/transfers":        (403, 200, 200, 403, 200, 403, 404, 403, 200, 403, 403, 404, 404, 200),
    "/me/file":                               (404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 200),
    "/review":                                (403, 200, 200, 403, 200, 403, 200, 403, 200, 403, 403, 200, 200, 403),
    "/review/{submitted}":                    (403, 403, 403, 403, 403, 403, 404, 403, 200, 403, 403, 404, 404, 403),
    "/changes":                               (403, 200, 200, 403, 200, 403, 200, 403, 200, 403, 403, 200, 200, 403),
    "/imports-exports":                       (403, 200, 200, 403, 200, 200, 200, 403, 200, 200, 403, 200, 200, 403),
    "/templates/JBXX.xlsx":                   (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/transfers":                             (403, 200, 200, 403, 200, 403, 200, 403, 200, 403, 403, 200, 200, 403),
    "/transfers/new":                         (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 200, 200, 403),
    "/rotations/new?teacher_id={effective}":  (403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 404, 404, 403),
    "/units":                                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200, 200, 403),
    "/units/{u_school}":                      (200, 200, 200, 200, 200, 200, 404, 200, 200, 200, 403, 404, 404, 403),
    "/units/{u_haizhu}":                      (200, 200, 200, 404, 404, 404, 200, 404, 404, 404, 403, 404, 404, 403),
    "/units/import":                          (200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "/accounts":                              (200, 403, 403, 200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403),
    "/accounts/new":                          (200, 403, 403, 200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403),
    "/teacher-accounts/new":                  (403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403),
    "/custom-fields":                         (200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "/notices":                               (200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "/sync":                                  (200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    "/audit-log":                             (200, 200, 200, 200, 200, 403, 200, 200, 200, 403, 403, 200, 200, 403),
    "/login-log":                             (200, 403, 403, 200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403),
    "/audit-log.csv":                         (200, 200, 200, 200, 200, 403, 200, 200, 200, 403, 403, 200, 200, 403),
    "/login-log.csv":                         (200, 403, 403, 200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403),
    "/pickers/division?q=4401":               (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/help/":                                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/account/security-key":                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/login/key":                            (302, 302, 302, 302, 302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    "/account/password":                      (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "/my-logins":                             (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
}  # fmt: skip


def _path(site, template: str) -> str:
    return template.format(
        effective=site.teachers["effective"],
        other=site.teachers["other"],
        draft=site.teachers["draft"],
        submitted=site.teachers["submitted"],
        u_school=site.ids["2144000001"],
        u_haizhu=site.ids["440105"],
    )


@pytest.fixture(scope="module")
def clients(site):
    out = {}
    for who in WHO:
        c = site.app.test_client()
        login(c, site.teacher_login if who == "teacher" else who)
        out[who] = c
    return out


@pytest.mark.parametrize("page", list(EXPECTED))
def test_who_may_open_each_page(site, clients, page):
    path = _path(site, page)
    got = {who: clients[who].get(path).status_code for who in COLUMNS}
    want = dict(zip(COLUMNS, EXPECTED[page], strict=True))
    wrong = {who: f"got {got[who]}, want {want[who]}" for who in COLUMNS if got[who] != want[who]}
    assert not wrong, f"{page}: {wrong}"


def test_every_page_of_the_app_is_in_the_table(site):
    """A new page must be added to EXPECTED (or to the pages that take a POST only / need no login)."""
    routes = {
        r.rule
        for r in site.app.url_map.iter_rules()
        if "GET" in r.methods and not r.rule.startswith(("/api", "/static", "/health", "/login", "/metrics"))
    }
    covered = {p.split("?")[0] for p in EXPECTED}
    placeholders = {
        "/teachers/<int:teacher_id>": "/teachers/{effective}",
        "/teachers/<int:teacher_id>/groups/<group>": "/teachers/{draft}/groups/JBXX",
        "/teachers/<int:teacher_id>/history": "/teachers/{effective}/history",
        "/teachers/<int:teacher_id>/changes/new": "/teachers/{effective}/changes/new",
        "/teachers/<int:teacher_id>/transfers": "/teachers/{effective}/transfers",
        "/review/<int:teacher_id>": "/review/{submitted}",
        "/units/<int:unit_id>": "/units/{u_school}",
        "/templates/<group>.<fmt>": "/templates/JBXX.xlsx",
        "/rotations/new": "/rotations/new",
        "/pickers/division": "/pickers/division",
    }
    # pages about one object that only exists after an action: covered by the flow tests
    by_flow = {
        "/changes/<int:request_id>",
        "/transfers/<int:transfer_id>",
        "/imports/<int:task_id>",
        "/imports/<int:task_id>/status",
        "/imports/<int:task_id>/report.xlsx",
        "/help/<guide>",
        "/help/screenshots/<name>",
    }
    missing = sorted(r for r in routes if placeholders.get(r, r) not in covered and r not in by_flow)
    assert not missing, f"pages without a row in EXPECTED: {missing}"


def test_every_menu_entry_opens_for_whoever_sees_it(site, clients):
    """The menu is drawn from the same rules: no entry leads anyone to a refusal, and the pages a person may
    open (per EXPECTED) that have a menu entry are in their menu."""
    import re

    from provincial_node.web.menu import MENU

    with site.app.test_request_context():
        from flask import url_for

        entries = {url_for(item.endpoint): item.label for item in MENU}
    for who in COLUMNS:
        home = clients[who].get("/").text
        nav = home.split('aria-label="主菜单"', 1)[1].split("</nav>", 1)[0]
        shown = set(re.findall(r'href="([^"]+)"', nav)) & set(entries)
        for path in shown:
            assert clients[who].get(path).status_code == 200, f"{who}: menu entry {entries[path]} ({path}) refused"
        for path in entries:
            if path in EXPECTED and EXPECTED[path][COLUMNS.index(who)] == 200 and path != "/":
                assert path in shown, f"{who} may open {path} but has no menu entry {entries[path]}"
