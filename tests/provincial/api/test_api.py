"""The provincial API through the real Flask app, on SQLite and PostgreSQL: contract, auth, scope."""

from __future__ import annotations

from provincial_node.context import Settings
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.conftest import PASSWORD

NEW_PASSWORD = "Changed-pass-2026"


def call(app, tokens, who, method, url, **kw):
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
    return app.test_client().open(url, method=method, headers=headers, **kw)


def unit_id(app, tokens, code):
    return next(
        u["id"] for u in call(app, tokens, "p_admin", "GET", "/api/v1/units").json["units"] if u["code"] == code
    )


def basic(seq):
    wf = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")
    return {
        **{k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in wf},
        "SFZJH": resident_id("440106", "19880315", seq),
        "XBM": "1" if int(seq[-1]) % 2 else "2",
        "XM": f"教师{seq}",
    }


def new_file(app, tokens, seq, school="2144000001", who="s1_info"):
    b = basic(seq)
    r = call(
        app,
        tokens,
        who,
        "POST",
        "/api/v1/teachers",
        json={"school_id": unit_id(app, tokens, school), "basic": {k: b[k] for k in ("XM", "SFZJLXM", "SFZJH")}},
    )
    assert r.status_code == 201, r.json
    tid = r.json["id"]
    assert call(app, tokens, who, "PUT", f"/api/v1/teachers/{tid}/groups/JBXX", json=b).status_code == 200
    return tid


def test_openapi_document_is_served(app):
    doc = app.test_client().get("/api/openapi.json").json
    assert doc["info"]["title"].startswith("tmis provincial node")
    assert "/api/v1/teachers/{teacher_id}/review" in doc["paths"]


def test_openapi_document_describes_every_json_response(app):
    """Every JSON operation declares its success response with a schema, so a client knows what comes back."""
    doc = app.test_client().get("/api/openapi.json").json
    one = doc["paths"]["/api/v1/teachers/{teacher_id}"]["get"]["responses"]["200"]
    assert one["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TeacherOut"}
    teacher = doc["components"]["schemas"]["TeacherOut"]["properties"]
    assert {"teacher_number", "status", "file_version", "data", "draft"} <= teacher.keys()
    undocumented = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue  # path-level parameters
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if not ok:
                undocumented.append((method, path))
            for code, r in ok.items():
                content = r.get("content", {})
                if "application/json" in content and "schema" not in content["application/json"]:
                    undocumented.append((method, path, code))
    assert undocumented == []
    downloads = doc["paths"]["/api/v1/templates/{group}"]["get"]["responses"]["200"]
    assert "description" in downloads


def test_errors_follow_the_contract(app, tokens):
    r = call(app, tokens, None, "GET", "/api/v1/teachers")
    assert r.status_code == 401 and set(r.json) == {"code", "error", "message", "details"}
    r = call(app, tokens, "s1_info", "POST", "/api/v1/teachers", json={"school_id": "x", "basic": {}, "extra": 1})
    assert r.status_code == 422 and r.json["code"] == "validation_failed"
    assert {e["field"] for e in r.json["details"]["errors"]} == {"school_id", "extra"}


def test_effective_file_through_the_api(app, tokens):
    tid = new_file(app, tokens, "301")
    assert call(app, tokens, "s1_info", "POST", f"/api/v1/teachers/{tid}/submit").json["status"] == "submitted"
    r = call(app, tokens, "s1_info", "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
    assert r.status_code == 403 and r.json["details"]["reason"] == "separation_of_duties"  # 谁填报谁负责
    r = call(app, tokens, "s1_rev", "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
    assert r.json["status"] == "school_approved"
    r = call(app, tokens, "th_info", "POST", f"/api/v1/teachers/{tid}/review", json={"decision": "approve"})
    assert r.json["status"] == "effective"
    outbox = call(app, tokens, "p_info", "GET", "/api/v1/outbox").json["entries"]
    assert any(e["record"]["fields"]["JBXX"]["XM"] == "教师301" for e in outbox)
    history = call(app, tokens, "th_info", "GET", f"/api/v1/teachers/{tid}/history").json["history"]
    assert history[-1]["action"] == "effective"


def test_scope_holds_through_every_endpoint(app, tokens):
    tid = new_file(app, tokens, "303")
    for who in ("hz_info", "s2_info", "s3_info"):
        for method, url, body in (
            ("GET", f"/api/v1/teachers/{tid}", None),
            ("GET", f"/api/v1/teachers/{tid}/history", None),
            ("PUT", f"/api/v1/teachers/{tid}/groups/LXFS", GOOD_RECORDS["LXFS"]),
            ("POST", f"/api/v1/teachers/{tid}/submit", None),
            ("POST", f"/api/v1/teachers/{tid}/review", {"decision": "approve"}),
            (
                "POST",
                f"/api/v1/teachers/{tid}/change-requests",
                {"changes": [{"group": "JBXX", "field": "XM", "new": "x"}], "reason": "x"},
            ),
        ):
            r = call(app, tokens, who, method, url, json=body)
            assert r.status_code == 404, (who, method, url, r.json)
        listed = call(app, tokens, who, "GET", "/api/v1/teachers").json["teachers"]
        assert tid not in [t["id"] for t in listed]


def test_teacher_self_service_through_the_api(app, tokens):
    tid = new_file(app, tokens, "305")
    r = call(
        app,
        tokens,
        "s1_admin",
        "POST",
        f"/api/v1/teachers/{tid}/account",
        json={
            "name": "教师305",
            "gender": "1",
            "birth_date": "1988-03-15",
            "id_number": resident_id("440106", "19880315", "305"),
            "initial_password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.json
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/login", json={"username": resident_id("440106", "19880315", "305"), "password": PASSWORD}
    ).json["token"]
    h = {"Authorization": f"Bearer {token}"}
    client.post("/api/v1/auth/password", headers=h, json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    r = client.put(f"/api/v1/teachers/{tid}/groups/NDKH", headers=h, json=[GOOD_RECORDS["NDKH"]])
    assert r.status_code == 403 and "KHJGM" in {e["field"] for e in r.json["details"]["errors"]}
    assert client.put(f"/api/v1/teachers/{tid}/groups/LXFS", headers=h, json=GOOD_RECORDS["LXFS"]).status_code == 200
    assert [t["id"] for t in client.get("/api/v1/teachers", headers=h).json["teachers"]] == [tid]


def test_lockout_through_the_api(app, tokens):
    client = app.test_client()
    for _ in range(Settings().login_max_failures):
        assert (
            client.post("/api/v1/auth/login", json={"username": "lock_me", "password": "Wrong-pass-1"}).status_code
            == 401
        )
    r = client.post("/api/v1/auth/login", json={"username": "lock_me", "password": PASSWORD})
    assert r.status_code == 423 and r.json["code"] == "account_locked"
    events = call(app, tokens, "p_admin", "GET", "/api/v1/audit-events?action=account.locked").json["events"]
    assert events and events[0]["target_type"] == "account"


def test_template_import_and_export_through_the_api(app, tokens):
    client = app.test_client()
    h = {"Authorization": f"Bearer {tokens['s1_info']}"}
    tpl = client.get("/api/v1/templates/LXFS?format=csv", headers=h)
    assert tpl.status_code == 200 and tpl.data.decode("utf-8-sig").startswith("教师编号(JSBH),通讯地址(TXDZ)")
    tid = new_file(app, tokens, "307")
    number = call(app, tokens, "s1_info", "GET", f"/api/v1/teachers/{tid}").json["teacher_number"]
    body = tpl.data + f"{number},广州市天河区,020-1234567,13800138000,a@b.cn,\n".encode() + b"4400000000999,x,,,,\n"
    school = unit_id(app, tokens, "2144000001")
    r = client.post(f"/api/v1/imports/LXFS?school_id={school}&format=csv", headers=h, data=body)
    assert r.status_code == 200, r.json
    assert (r.json["updated"], r.json["failed"]) == (1, 1)
    assert r.json["errors"][0]["row"] == 3
    r = call(
        app,
        tokens,
        "th_info",
        "POST",
        "/api/v1/exports",
        json={"unit_id": unit_id(app, tokens, "440106"), "reason": "核对", "groups": ["JBXX"], "format": "csv"},
    )
    assert r.status_code == 200 and r.data.decode("utf-8-sig").startswith("教师编号(JSBH)")
    events = call(app, tokens, "p_admin", "GET", "/api/v1/audit-events?action=files.export").json["events"]
    assert events[0]["reason"] == "核对"


def test_transfer_inside_the_province_through_the_api(app, tokens):
    tid = new_file(app, tokens, "309")
    for who, step in (("s1_info", "submit"), ("s1_rev", "review"), ("th_info", "review")):
        call(
            app,
            tokens,
            who,
            "POST",
            f"/api/v1/teachers/{tid}/{step}",
            json={"decision": "approve"} if step == "review" else None,
        )
    file = call(app, tokens, "s1_info", "GET", f"/api/v1/teachers/{tid}").json
    r = call(
        app,
        tokens,
        "s2_info",
        "POST",
        "/api/v1/transfers",
        json={
            "teacher_number": file["teacher_number"],
            "doc_type": "1",
            "doc_number": file["data"]["JBXX"]["SFZJH"],
            "to_school_id": unit_id(app, tokens, "2144000002"),
            "reason": "工作需要",
        },
    )
    assert r.status_code == 201, r.json
    xid = r.json["id"]
    assert [t["id"] for t in call(app, tokens, "th_info", "GET", "/api/v1/transfers/pending").json["transfers"]] == [
        xid
    ]
    for who in ("th_info", "s1_info", "th_info"):
        r = call(app, tokens, who, "POST", f"/api/v1/transfers/{xid}/decision", json={"decision": "approve"})
        assert r.status_code == 200, r.json
    assert r.json["status"] == "completed"
    assert call(app, tokens, "s2_info", "GET", f"/api/v1/teachers/{tid}").status_code == 200
    assert call(app, tokens, "s1_info", "GET", f"/api/v1/teachers/{tid}").status_code == 404
    steps = call(app, tokens, "th_info", "GET", f"/api/v1/teachers/{tid}/transfers").json["transfers"][0]["steps"]
    assert [s["step"] for s in steps] == ["start", "receiving_bureau", "sending_school", "sending_bureau"]
