"""Transfers and exchange rotation inside a province, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from common.db import utcnow
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.context import Settings
from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files import files
from provincial_node.transfers import local
from sync_protocol.records import record_from_json
from tests.helpers import ctx
from tests.provincial.teacher_files.test_files_review import P, _new_file, _to_effective


def _effective(province, seq="601"):
    return _to_effective(province, _new_file(province, seq=seq))


def _start(province, t, to="2144000002", who="school2_info"):
    return local.start_transfer(
        province.ctx(who, province=P), t.teacher_number, t.doc_type, t.doc_number, province.units[to].id, "工作需要"
    )


def test_transfer_inside_the_province_moves_the_file_with_its_history(province):
    s = province.session
    t = _effective(province)
    tr = _start(province, t)
    assert tr.next_step == "receiving_bureau"
    order = [("tianhe_info", "receiving_bureau"), ("school1_info", "sending_school"), ("tianhe_info", "sending_bureau")]
    for who, step in order:
        assert tr.next_step == step
        assert [x.id for x in local.pending(ctx(s, province.actor(who)))] == [tr.id]
        local.decide(ctx(s, province.actor(who), province=P), tr.id, "approve", "同意")
    assert tr.status == "completed"
    assert t.unit_id == province.units["2144000002"].id
    gzjl = t.data["GZJL"]
    assert gzjl[-2]["RZDWMC"] == "天河区第一小学" and gzjl[-2]["RZJSNY"]  # closing entry
    assert gzjl[-1]["RZDWMC"] == "天河区第二小学" and "RZJSNY" not in gzjl[-1]  # opening entry
    assert files.get_teacher(ctx(s, province.actor("school2_info")), t.id)  # the new school sees it now
    with pytest.raises(NotFoundError):
        files.get_teacher(ctx(s, province.actor("school1_info")), t.id)  # the old one no longer does
    assert [h.action for h in files.history(ctx(s, province.actor("tianhe_info")), t.id)][-1] == "transfer"
    assert [x["step"] for x in tr.steps] == ["start", "receiving_bureau", "sending_school", "sending_bureau"]


def test_each_step_can_reject_with_a_reason(province):
    s = province.session
    for n, who in enumerate(["tianhe_info", "school1_info", "tianhe_info"]):
        t = _effective(province, seq=f"61{n}")
        tr = _start(province, t)
        for prior in ["tianhe_info", "school1_info", "tianhe_info"][:n]:
            local.decide(ctx(s, province.actor(prior), province=P), tr.id, "approve")
        with pytest.raises(ValidationError):
            local.decide(ctx(s, province.actor(who), province=P), tr.id, "reject")
        local.decide(ctx(s, province.actor(who), province=P), tr.id, "reject", "教学任务未完成")
        assert tr.status == "rejected" and tr.steps[-1]["reason"] == "教学任务未完成"
        assert t.unit_id == province.units["2144000001"].id


def test_only_the_waiting_unit_decides_and_scope_holds(province):
    s = province.session
    tr = _start(province, _effective(province))
    with pytest.raises(PermissionDeniedError):
        local.decide(ctx(s, province.actor("school1_info"), province=P), tr.id, "approve")
    with pytest.raises(NotFoundError):
        local.decide(ctx(s, province.actor("haizhu_info"), province=P), tr.id, "approve")
    with pytest.raises(NotFoundError):  # a wrong identity document finds nothing
        local.start_transfer(
            ctx(s, province.actor("school3_info"), province=P),
            "4400000000999",
            "1",
            "11010519491231002X",
            province.units["3444000003"].id,
            "x",
        )


def test_withdraw_and_expiry(province):
    s = province.session
    tr = _start(province, _effective(province))
    with pytest.raises(PermissionDeniedError):
        local.withdraw(ctx(s, province.actor("school1_info")), tr.id, "x")
    local.withdraw(ctx(s, province.actor("school2_info")), tr.id, "计划调整")
    assert tr.status == "withdrawn"
    tr2 = _start(province, _effective(province, seq="621"))
    later = utcnow() + Settings().transfer_expiry + dt.timedelta(days=1)
    assert local.expire_due(ctx(s, None, now=later)) == 1
    assert tr2.status == "expired"
    with pytest.raises(ConflictError):
        local.decide(ctx(s, province.actor("tianhe_info"), province=P), tr2.id, "approve")


def test_rotation_without_personnel_change(province):
    s = province.session
    t = _effective(province, seq="631")
    tr = local.start_rotation(
        ctx(s, province.actor("school1_info")),
        t.id,
        with_transfer=False,
        rotation_type="3",
        start_month="2026-09",
        end_month="2027-07",
        reason="支教",
        to_unit_name="从化区太平中学",
    )
    local.decide(ctx(s, province.actor("tianhe_info"), province=P), tr.id, "approve")
    assert tr.status == "completed" and t.unit_id == province.units["2144000001"].id
    assert t.data["JBXX"]["RYZTM"] == "205"
    assert t.data["JLLG"][-1] == {
        "JLLGLXM": "3",
        "SFDDRSGX": "0",
        "KSNY": "2026-09",
        "JSNY": "2027-07",
        "YDWMC": "天河区第一小学",
        "JLLGDWMC": "从化区太平中学",
    }
    entries = list(s.scalars(select(OutboxEntry).order_by(OutboxEntry.version)))
    last = record_from_json(entries[-1].record)
    assert last.op == "status_change" and last.fields["JBXX"]["RYZTM"] == "205"
    local.end_rotation(ctx(s, province.actor("school1_info"), province=P), tr.id)
    assert t.data["JBXX"]["RYZTM"] == "100"


def test_rotation_with_personnel_change_moves_the_file(province):
    s = province.session
    t = _effective(province, seq="641")
    tr = local.start_rotation(
        ctx(s, province.actor("school1_info")),
        t.id,
        with_transfer=True,
        rotation_type="1",
        start_month="2026-09",
        end_month=None,
        reason="城乡交流",
        to_school_id=province.units["3444000003"].id,
    )
    for who in ("tianhe_info", "school3_info", "haizhu_info"):
        local.decide(ctx(s, province.actor(who), province=P), tr.id, "approve")
    assert tr.status == "completed"
    assert t.unit_id == province.units["3444000003"].id
    assert t.data["JLLG"][-1]["SFDDRSGX"] == "1"
    assert t.data["GZJL"][-1]["RZDWMC"] == "海珠区第一中学"
    assert [x.id for x in local.in_scope(ctx(s, province.actor("haizhu_info")))] == [tr.id]
