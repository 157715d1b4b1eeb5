"""The one effective-write path: every workflow that gives a file a new effective version goes through
``teacher_files.effective.write_effective``, which keeps the version, the history, the draft, the name and
the outbox in step."""

from __future__ import annotations

import ast
import datetime as dt

import pytest
from sqlalchemy import select

from common.db import utcnow
from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files import change_requests, effective, files, review
from provincial_node.teacher_files.effective import draft_in_step
from provincial_node.teacher_files.models import Teacher
from provincial_node.transfers import inbound, local
from provincial_node.transfers.models import Transfer
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.inbox import InboxMessage
from sync_protocol.records import RecordOp, record_from_json
from tests.conftest import REPO
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.conftest import reviewer

WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _new_file(p, seq="123", school="2144000001", actor="school1_info"):
    rid = resident_id("440106", "19880315", seq)
    basic = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
    basic.update(SFZJH=rid, XBM="1" if int(seq[-1]) % 2 else "2", XM=f"教师{seq}")
    t = files.register_teacher(p.ctx(actor), p.units[school].id, {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")})
    files.update_group(p.ctx(actor), t.id, "JBXX", basic)
    return t


def _effective(p, seq="123", school="2144000001", actor="school1_info", county="tianhe_info"):
    t = _new_file(p, seq, school, actor)
    files.submit(p.ctx(actor), t.id)
    review.review(p.ctx(reviewer(actor)), t.id, "approve")
    review.review(p.ctx(county), t.id, "approve")
    return t


@pytest.fixture
def spy(monkeypatch):
    calls: list[tuple[str, str]] = []
    real = effective.write_effective

    def recording(ctx, teacher, data, **kw):
        calls.append((teacher.teacher_number, str(kw["action"])))
        return real(ctx, teacher, data, **kw)

    monkeypatch.setattr(effective, "write_effective", recording)
    return calls


def test_every_workflow_writes_the_effective_version_through_the_one_path(province, spy):
    p = province
    # 1. the last review approval
    t = _effective(p)
    assert spy == [(t.teacher_number, "effective")]
    # 2. an approved change request
    cr = change_requests.request_change(
        p.ctx("school1_info"), t.id, [{"group": "JBXX", "field": "XM", "new": "改名"}], "更正姓名"
    )
    change_requests.decide(p.ctx("tianhe_info"), cr.id, "approve", "")
    assert spy[-1] == (t.teacher_number, "change_request")
    # 3. a transfer inside the province completing
    tr = local.start_transfer(
        p.ctx("school2_info"), t.teacher_number, t.doc_type, t.doc_number, p.units["2144000002"].id, "调入"
    )
    for who in ("tianhe_info", "school1_info", "tianhe_info"):
        local.decide(p.ctx(who), tr.id, "approve")
    assert spy[-1] == (t.teacher_number, "transfer")
    # 4. a rotation completing, and 5. ending
    t2 = _effective(p, seq="124")
    rot = local.start_rotation(
        p.ctx("school1_info"),
        t2.id,
        with_transfer=False,
        rotation_type="1",
        start_month="2026-09",
        end_month=None,
        reason="支教",
        to_unit_name="从化区太平中学",
    )
    local.decide(p.ctx("tianhe_info"), rot.id, "approve")
    assert spy[-1] == (t2.teacher_number, "rotation")
    local.end_rotation(p.ctx("school1_info"), rot.id)
    assert spy[-1] == (t2.teacher_number, "rotation_end")
    # 6. a file handed to another province, and 7. one received from another province
    t3 = _effective(p, seq="125")
    out = Transfer(
        kind="transfer",
        teacher_id=t3.id,
        from_unit_id=t3.unit_id,
        to_unit_id=None,
        to_unit_name="北京某校",
        reason="跨省调动",
        started_at=utcnow(),
        expires_at=utcnow() + dt.timedelta(days=30),
        steps=[],
        transfer_uid="11-1-abcd",
        role="from",
        remote_province="11",
        status="open",
        next_step="completion",
    )
    p.session.add(out)
    p.session.flush()
    inbound.process(p.ctx(None), _message("transfer_completion", {"transfer_id": "11-1-abcd"}))
    assert spy[-1] == (t3.teacher_number, "transfer_out") and t3.status == "transferred_out"
    number = make_teacher_number("11", 9)
    into = Transfer(
        kind="transfer",
        teacher_id=None,
        from_unit_id=None,
        to_unit_id=p.units["2144000002"].id,
        to_unit_name="天河区第二小学",
        reason="跨省调入",
        started_at=utcnow(),
        expires_at=utcnow() + dt.timedelta(days=30),
        steps=[],
        transfer_uid="44-9-abcd",
        role="to",
        remote_province="11",
        teacher_number=number,
        doc_type="1",
        doc_number=resident_id("110105", "19900101", "017"),
        status="open",
        next_step="completion",
    )
    p.session.add(into)
    p.session.flush()
    groups = {"JBXX": {**{k: v for k, v in GOOD_RECORDS["JBXX"].items() if k != "RYZTM"}, "XM": "调入教师"}}
    body = {"transfer_id": "44-9-abcd", "teacher_number": number, "file": {"groups": groups, "history": []}}
    inbound.process(p.ctx(None), _message("transfer_completion", body))
    assert spy[-1] == (number, "transfer_in")
    assert [a for _n, a in spy] == [
        "effective",
        "change_request",
        "transfer",
        "effective",
        "rotation",
        "rotation_end",
        "effective",
        "transfer_out",
        "transfer_in",
    ]


def _message(kind: str, body: dict) -> InboxMessage:
    return InboxMessage("44", 1, kind, utcnow(), body, "00" * 32, b"")


def _assigned_attributes(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        for target in targets:
            for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(t, ast.Attribute):
                    names.add(t.attr)
    return names


def test_only_the_effective_path_bumps_the_version_or_replaces_the_effective_data():
    """A structural check that holds for the workflows still to come: nothing else in the provincial node
    assigns ``file_version`` or an effective ``data``."""
    offenders = []
    for path in sorted((REPO / "provincial_node").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        touched = _assigned_attributes(ast.parse(path.read_text(encoding="utf-8"))) & {"file_version", "data"}
        if touched and path.name != "effective.py":
            offenders.append((str(path.relative_to(REPO)), sorted(touched)))
    assert offenders == []


def test_the_write_keeps_version_history_name_and_outbox_in_step(province):
    p = province
    t = _effective(p)
    version, outbox_before = t.file_version, _outbox(p)
    data = {**t.data, "JBXX": {**t.data["JBXX"], "XM": "新名字"}}
    changes = effective.write_effective(p.ctx("tianhe_info"), t, data, action="change_request", reason="更名")
    assert t.file_version == version + 1 and t.name == "新名字" and t.draft == t.data
    assert changes == [{"group": "JBXX", "index": None, "field": "XM", "old": "教师123", "new": "新名字"}]
    (entry,) = _outbox(p)[len(outbox_before) :]
    assert record_from_json(entry.record).fields["JBXX"]["XM"] == "新名字"
    # a change outside the core view gets a version and a history line, but no outbox entry
    data = {**t.data, "LXFS": GOOD_RECORDS["LXFS"]}
    effective.write_effective(p.ctx("tianhe_info"), t, data, action="change_request")
    assert t.file_version == version + 2 and len(_outbox(p)) == len(outbox_before) + 1
    # a transfer out is always recorded, with no fields
    effective.write_effective(
        p.ctx(None),
        t,
        t.data,
        action="transfer_out",
        status="transferred_out",
        op=RecordOp.TRANSFER_OUT,
        to_province="11",
    )
    last = record_from_json(_outbox(p)[-1].record)
    assert (last.op, last.fields, last.to_province) == ("transfer_out", {}, "11")


def _outbox(p):
    return list(p.session.scalars(select(OutboxEntry).order_by(OutboxEntry.version)))


def test_pending_edits_of_the_working_copy_survive_an_effective_change():
    before = {"JBXX": {"XM": "甲", "JBXNY": "2015-09"}, "GZJL": [{"RZDWMC": "一小", "RZKSNY": "2015-09"}]}
    draft = {
        "JBXX": {"XM": "甲", "JBXNY": "2015-09", "CYM": "乙"},  # a pending edit of a field the workflow leaves alone
        "GZJL": [{"RZDWMC": "一小", "RZKSNY": "2015-09"}, {"RZDWMC": "补录", "RZKSNY": "2010-09"}],  # a pending row
        "LXFS": {"SJ": "13800138000"},  # a pending group
    }
    after = {
        "JBXX": {"XM": "甲", "JBXNY": "2026-12", "RYZTM": "100"},
        "GZJL": [
            {"RZDWMC": "一小", "RZKSNY": "2015-09", "RZJSNY": "2026-12"},
            {"RZDWMC": "二小", "RZKSNY": "2026-12"},
        ],
    }
    merged = draft_in_step(draft, before, after)
    assert merged["JBXX"] == {"XM": "甲", "JBXNY": "2026-12", "RYZTM": "100", "CYM": "乙"}
    assert merged["GZJL"] == [*after["GZJL"], {"RZDWMC": "补录", "RZKSNY": "2010-09"}]
    assert merged["LXFS"] == {"SJ": "13800138000"}
    # nothing pending: the working copy simply becomes the new file
    assert draft_in_step(before, before, after) == after
    assert draft_in_step(after, before, after) == after


def test_a_file_under_review_keeps_its_submitted_edits_when_a_change_request_is_approved(province):
    p = province
    t = _effective(p)
    files.update_group(p.ctx("school1_info"), t.id, "LXFS", GOOD_RECORDS["LXFS"])
    files.submit(p.ctx("school1_info"), t.id)
    cr = change_requests.request_change(
        p.ctx("school1_info"), t.id, [{"group": "JBXX", "field": "XM", "new": "改名"}], "更正姓名"
    )
    change_requests.decide(p.ctx("tianhe_info"), cr.id, "approve", "")
    assert t.status == "submitted" and t.data["JBXX"]["XM"] == "改名"
    assert t.draft["JBXX"]["XM"] == "改名" and t.draft["LXFS"] == GOOD_RECORDS["LXFS"]
    assert p.session.get(Teacher, t.id).name == "改名"
