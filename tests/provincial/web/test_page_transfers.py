"""调动 and 交流轮岗 through the pages (test client, both databases): the receiving school starts a transfer,
each unit decides its step on the detail page (who holds the next step is shown), the trail reads in Chinese
with Beijing times; a request is withdrawn by the unit that started it; a rotation is started from the file."""

from __future__ import annotations

import re

from common.db import session_scope
from provincial_node.context import runtime
from provincial_node.teacher_files.models import Teacher
from provincial_node.transfers.models import Transfer
from tests.provincial.web.conftest import post


def _teacher(site, tid: int) -> Teacher:
    with session_scope(runtime(site.app).session_factory) as db:
        t = db.get(Teacher, tid)
        db.expunge(t)
        return t


def _transfer(site, xid: int) -> Transfer:
    with session_scope(runtime(site.app).session_factory) as db:
        t = db.get(Transfer, xid)
        db.expunge(t)
        return t


def _start(site, client, reason: str = "工作需要"):
    t = _teacher(site, site.teachers["effective"])
    form = {
        "teacher_number": t.teacher_number,
        "doc_type": "1",
        "doc_number": t.doc_number,
        "to_school_id": str(site.ids["2144000002"]),
        "reason": reason,
    }
    return post(client, "/transfers/new", form, token_from="/transfers/new")


def test_a_transfer_without_a_reason_says_so_next_to_the_field(site):
    r = _start(site, site.client("school2_info"), reason="")
    assert r.status_code == 422 and 'data-field-error="reason"' in r.text


def test_a_transfer_is_started_withdrawn_and_started_again_then_decided_step_by_step(site):
    receiving = site.client("school2_info")
    r = _start(site, receiving)
    assert r.status_code == 302
    first = int(r.headers["Location"].rsplit("/", 1)[1])
    r = post(receiving, f"/transfers/{first}/withdraw", {"reason": "申请有误"}, token_from=f"/transfers/{first}")
    assert r.status_code == 302 and _transfer(site, first).status == "withdrawn"

    r = _start(site, receiving)
    xid = int(r.headers["Location"].rsplit("/", 1)[1])
    page = receiving.get(f"/transfers/{xid}").text
    assert "调入单位主管部门审核" in page and "办理中" in page
    # each step on the detail page of the unit that holds it; the others only read
    for who in ("county_info", "school_info", "county_info"):
        c = site.client(who)
        detail = c.get(f"/transfers/{xid}").text
        assert "同意" in detail and 'name="decision" value="approve"' in detail, who
        r = post(
            c, f"/transfers/{xid}/decision", {"decision": "approve", "reason": "同意"}, token_from=f"/transfers/{xid}"
        )
        assert r.status_code == 302
    t = _transfer(site, xid)
    assert t.status == "completed"
    assert _teacher(site, site.teachers["effective"]).unit_id == site.ids["2144000002"]
    trail = receiving.get(f"/transfers/{xid}").text
    assert "已完成" in trail and "UTC" not in trail
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", trail)  # Beijing time, as everywhere
    assert trail.count('class="list-group-item"') >= 4  # start + three decisions


def test_a_rotation_is_started_from_the_file_by_the_sending_school(site):
    sending = site.client("school2_info")  # the teacher now belongs to school 2 (previous test)
    tid = site.teachers["effective"]
    page = sending.get(f"/rotations/new?teacher_id={tid}")
    assert page.status_code == 200
    form = {
        "teacher_id": str(tid),
        "with_transfer": "0",
        "rotation_type": "1",
        "start_month": "2026-09",
        "to_school_id": str(site.ids["2144000001"]),
        "reason": "",
    }
    page = f"/rotations/new?teacher_id={tid}"
    r = post(sending, page, form, token_from=page)
    assert r.status_code == 422 and 'data-field-error="reason"' in r.text
    r = post(sending, page, {**form, "reason": "城乡交流"}, token_from=page)
    assert r.status_code == 302
    xid = int(r.headers["Location"].rsplit("/", 1)[1])
    assert _transfer(site, xid).kind == "rotation" and "交流轮岗" in sending.get(f"/transfers/{xid}").text
