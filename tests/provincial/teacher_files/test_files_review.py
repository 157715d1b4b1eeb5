"""Teacher files, review chain, change requests, custom indicators and the outbox — SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.accounts import units
from provincial_node.accounts.access import actor_for
from provincial_node.context import Actor
from provincial_node.sync import outbox
from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files import change_requests, custom_fields, files, review, self_service
from provincial_node.teacher_files.models import TeacherHistory
from sync_protocol.identifiers import check_teacher_number
from sync_protocol.records import record_from_json
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, reviewer

P = "44"


def _basic(seq: str = "123", **over):
    rid = resident_id("440106", "19880315", seq)
    gender = "1" if int(seq[-1]) % 2 else "2"
    workflow = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")  # written by workflows, not typed in
    base = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in workflow}
    return {**base, "SFZJH": rid, "XBM": gender, "XM": f"教师{seq}", **over}


def _new_file(p, school="2144000001", actor="school1_info", seq="123", **over):
    t = files.register_teacher(
        p.ctx(actor, province=P),
        p.units[school].id,
        {"XM": f"教师{seq}", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", seq)},
    )
    files.update_group(p.ctx(actor), t.id, "JBXX", _basic(seq, **over))
    return t


def _to_effective(p, t, school_actor="school1_info", county_actor="tianhe_info"):
    files.submit(p.ctx(school_actor), t.id)
    review.review(p.ctx(reviewer(school_actor), province=P), t.id, "approve")
    review.review(p.ctx(county_actor, province=P), t.id, "approve")
    return t


def _teacher_actor(p, t) -> Actor:
    acc = self_service.create_teacher_account(
        p.ctx("school1_admin"),
        t.id,
        name=t.name,
        gender=t.draft["JBXX"]["XBM"],
        birth_date="1988-03-15",
        id_number=t.doc_number,
        initial_password=PASSWORD,
    )
    return actor_for(p.session, acc)


def _outbox(p):
    return list(p.session.scalars(select(OutboxEntry).order_by(OutboxEntry.version)))


def test_registration_assigns_a_valid_teacher_number_and_refuses_duplicates(province):
    t = _new_file(province)
    assert check_teacher_number(t.teacher_number).startswith("44")
    with pytest.raises(ConflictError) as exc:
        files.register_teacher(
            province.ctx("school2_info", province=P),
            province.units["2144000002"].id,
            {"XM": "重复", "SFZJLXM": "1", "SFZJH": t.doc_number.lower()},
        )
    # another school learns only that the person is on file in the province, not where or under which number
    assert exc.value.details == {"reason": "duplicate_identity"}
    assert t.teacher_number not in exc.value.message
    with pytest.raises(ConflictError) as exc:  # a file in the caller's own scope is named
        files.register_teacher(
            province.ctx("school1_info", province=P),
            province.units["2144000001"].id,
            {"XM": "重复", "SFZJLXM": "1", "SFZJH": t.doc_number},
        )
    assert exc.value.details["teacher_number"] == t.teacher_number
    assert exc.value.details["unit_code"] == "2144000001"


def test_full_review_chain_to_effective_and_outbox(province):
    t = _new_file(province)
    files.update_group(province.ctx("school1_info"), t.id, "JBDY", [GOOD_RECORDS["JBDY"]])
    assert _outbox(province) == []  # drafts never enter the outbox
    files.submit(province.ctx("school1_info"), t.id)
    assert t.status == "submitted"
    with pytest.raises(PermissionDeniedError):  # the county cannot skip the school
        review.review(province.ctx("tianhe_info", province=P), t.id, "approve")
    review.review(province.ctx("school1_rev", province=P), t.id, "approve")
    assert t.status == "school_approved" and _outbox(province) == []
    review.review(province.ctx("tianhe_info", province=P), t.id, "approve")
    assert t.status == "effective" and t.file_version == 1
    (entry,) = _outbox(province)
    rec = record_from_json(entry.record)
    assert rec.teacher_number == t.teacher_number and rec.version == 1
    assert "JBDY" not in rec.fields and "JBDY.JBGZ" in rec.withheld  # wages never leave the province
    assert rec.fields["JBXX"]["XM"] == t.name
    assert [h.action for h in files.history(province.ctx("tianhe_info"), t.id)] == [
        "register",
        "edit",
        "edit",
        "submit",
        "approve",
        "effective",
    ]


def test_city_review_when_the_province_configures_it(province):
    units.set_review_chain(province.ctx(None), "primary_secondary", "county,city")
    t = _new_file(province)
    _to_effective(province, t)
    assert t.status == "county_approved"
    review.review(province.ctx("city_info", province=P), t.id, "approve")
    assert t.status == "effective"
    # a setting for one 办学类型 code wins over its stage's
    units.set_review_chain(province.ctx(None), "211", "county")
    t2 = _to_effective(province, _new_file(province, seq="124"))
    assert t2.status == "effective"
    with pytest.raises(ValidationError):
        units.set_review_chain(province.ctx(None), "999", "county")


def test_review_queues_follow_each_schools_chain(province):
    """Each level's queue (and its count) holds exactly the files waiting for that unit, by the chain the
    province set; keyset paging goes on after the last id shown."""
    units.set_review_chain(province.ctx(None), "primary_secondary", "county,city")
    at_city = _to_effective(province, _new_file(province, seq="131"))  # county approved: the city's turn
    at_county = _new_file(province, seq="133")
    files.submit(province.ctx("school1_info"), at_county.id)
    review.review(province.ctx("school1_rev", province=P), at_county.id, "approve")
    at_school = [_new_file(province, seq=s) for s in ("135", "137")]
    for t in at_school:
        files.submit(province.ctx("school1_info"), t.id)
    _new_file(province, seq="139")  # a draft waits for nobody

    def queue(actor, **kw):
        return [t.id for t in review.review_queue(province.ctx(actor, province=P), **kw)]

    assert queue("city_info") == [at_city.id] and review.review_queue_count(province.ctx("city_info")) == 1
    assert queue("tianhe_info") == [at_county.id] and review.review_queue_count(province.ctx("tianhe_info")) == 1
    assert queue("school1_rev") == [t.id for t in at_school]
    assert review.review_queue_count(province.ctx("school1_rev")) == 2
    assert queue("school1_rev", limit=1) == [at_school[0].id]
    assert queue("school1_rev", after_id=at_school[0].id) == [at_school[1].id]
    # a setting for the school's 办学类型 ends the chain at the county: the file the county approved for the city
    # is the county's again, and its approval now makes the file effective
    units.set_review_chain(province.ctx(None), "211", "county")
    assert queue("city_info") == [] and review.review_queue_count(province.ctx("city_info")) == 0
    assert queue("tianhe_info") == [at_city.id, at_county.id]
    review.review(province.ctx("tianhe_info", province=P), at_city.id, "approve")
    assert at_city.status == "effective"


def test_rejection_returns_the_file_with_its_reason(province):
    t = _new_file(province)
    files.submit(province.ctx("school1_info"), t.id)
    review.review(province.ctx("school1_rev", province=P), t.id, "approve")
    with pytest.raises(ValidationError):
        review.review(province.ctx("tianhe_info", province=P), t.id, "reject")
    review.review(province.ctx("tianhe_info", province=P), t.id, "reject", "最高学历与学习经历不符")
    assert t.status == "rejected" and t.rejection_reason == "最高学历与学习经历不符"
    files.update_group(province.ctx("school1_info"), t.id, "JBXX", _basic(ZGXLM="21", ZGXWCCM="4", ZGXWM="404"))
    files.submit(province.ctx("school1_info"), t.id)
    assert t.status == "submitted" and t.rejection_reason is None


def test_submission_runs_the_completeness_check(province):
    t = files.register_teacher(
        province.ctx("school1_info", province=P),
        province.units["2144000001"].id,
        {"XM": "张三", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", "555")},
    )
    with pytest.raises(ValidationError) as exc:
        files.submit(province.ctx("school1_info"), t.id)
    assert {"XBM", "CSRQ", "JZGLBM"} <= {e["field"] for e in exc.value.details["errors"]}


def test_scope_county_and_school_users_cannot_see_other_files(province):
    t = _new_file(province)
    other = _new_file(province, school="3444000003", actor="school3_info", seq="777")
    assert files.get_teacher(province.ctx("tianhe_query"), t.id)
    for actor, tid in (
        ("haizhu_info", t.id),
        ("school2_info", t.id),
        ("tianhe_info", other.id),
        ("school1_info", other.id),
    ):
        with pytest.raises(NotFoundError):
            files.get_teacher(province.ctx(actor), tid)
        with pytest.raises(NotFoundError):
            files.update_group(province.ctx(actor), tid, "LXFS", GOOD_RECORDS["LXFS"])
    assert [x.id for x in files.list_teachers(province.ctx("haizhu_info"))] == [other.id]
    assert files.list_teachers(province.ctx("school2_info")) == []


def test_teacher_self_service_rights(province):
    t = _new_file(province)
    me = _teacher_actor(province, t)
    files.update_group(ctx(province.session, me), t.id, "LXFS", GOOD_RECORDS["LXFS"])
    with pytest.raises(PermissionDeniedError) as exc:  # 考核结果 is the school's
        files.update_group(ctx(province.session, me), t.id, "NDKH", [GOOD_RECORDS["NDKH"]])
    assert {e["field"] for e in exc.value.details["errors"]} == {"KHND", "KHJGM", "KHDWMC"}
    with pytest.raises(PermissionDeniedError):
        files.update_group(ctx(province.session, me), t.id, "JBDY", [GOOD_RECORDS["JBDY"]])
    other = _new_file(province, seq="779")
    with pytest.raises(NotFoundError):  # only their own file
        files.get_teacher(ctx(province.session, me), other.id)
    files.submit(ctx(province.session, me), t.id)
    with pytest.raises(ConflictError):  # after submission: no edits until sent back
        files.update_group(ctx(province.session, me), t.id, "LXFS", {**GOOD_RECORDS["LXFS"], "SJ": "13900139000"})


def test_after_effective_new_information_is_reviewed_and_changes_need_a_request(province):
    t = _to_effective(province, _new_file(province))
    me = _teacher_actor(province, t)
    # new information: a training record appended → draft → review again; effective data untouched
    files.update_group(ctx(province.session, me), t.id, "GNPX", [GOOD_RECORDS["GNPX"]])
    assert t.status == "draft" and "GNPX" not in t.data
    # changing effective information directly is refused, for the teacher and for the school
    for actor in (me, province.actor("school1_info")):
        with pytest.raises(ConflictError, match="change request"):
            files.update_group(ctx(province.session, actor), t.id, "JBXX", {**t.data["JBXX"], "XM": "改名"})
    _to_effective(province, t)
    assert t.data["GNPX"] == [{k: v for k, v in GOOD_RECORDS["GNPX"].items()}]
    assert len(_outbox(province)) == 1  # training hours are not core: nothing new to send
    # a change request by the school, approved by the supervising bureau
    cr = change_requests.request_change(
        province.ctx("school1_info"), t.id, [{"group": "JBXX", "field": "ZGXLM", "new": "11"}], "取得博士学位"
    )
    assert t.data["JBXX"]["ZGXLM"] == "14"  # not applied before approval
    with pytest.raises(PermissionDeniedError):
        change_requests.decide(province.ctx("school1_info", province=P), cr.id, "approve", "ok")
    with pytest.raises(NotFoundError):  # another county cannot even see it
        change_requests.decide(province.ctx("haizhu_info", province=P), cr.id, "approve", "ok")
    change_requests.decide(province.ctx("tianhe_info", province=P), cr.id, "approve", "核实无误")
    assert t.data["JBXX"]["ZGXLM"] == "11" and t.file_version == 3
    assert [e.version for e in _outbox(province)] == [1, 2]
    assert record_from_json(_outbox(province)[-1].record).fields["JBXX"]["ZGXLM"] == "11"


def test_a_change_request_that_would_break_the_file_is_refused(province):
    t = _to_effective(province, _new_file(province))
    with pytest.raises(ValidationError):
        change_requests.request_change(
            province.ctx("school1_info"), t.id, [{"group": "JBXX", "field": "JBXNY", "new": "1990-01"}], "录入错误"
        )


def test_custom_indicator_validates_is_stored_and_never_synced(province):
    s, cat = province.session, province.catalogue
    with pytest.raises(PermissionDeniedError):
        custom_fields.define(
            ctx(s, province.actor("tianhe_info")), {"group_code": "JBXX", "code": "X_A", "label": "x", "type": "text"}
        )
    with pytest.raises(ValidationError):
        custom_fields.define(
            ctx(s, province.actor("province_info")),
            {"group_code": "JBXX", "code": "bad", "label": "", "type": "colour"},
        )
    f = custom_fields.define(
        ctx(s, province.actor("province_info")),
        {
            "group_code": "JBXX",
            "code": "X_GGJSLX",
            "label": "骨干教师类型",
            "type": "code",
            "codes": {"1": "省级骨干", "2": "市级骨干", "3": "区级骨干"},
            "filled_by": "school",
        },
    )
    t = _new_file(province, X_GGJSLX="2")
    with pytest.raises(ValidationError):
        files.update_group(ctx(s, province.actor("school1_info")), t.id, "JBXX", _basic(X_GGJSLX="9"))
    _to_effective(province, t)
    assert t.data["JBXX"]["X_GGJSLX"] == "2"
    rec = record_from_json(_outbox(province)[-1].record)
    assert "X_GGJSLX" not in rec.fields["JBXX"] and "JBXX.X_GGJSLX" in rec.withheld
    custom_fields.retire(ctx(s, province.actor("province_info")), f.id, "指标调整")
    full = custom_fields.catalogue_for(s, cat)
    assert full.group("JBXX").field("X_GGJSLX").retired
    assert files.get_teacher(ctx(s, province.actor("tianhe_info")), t.id).data["JBXX"]["X_GGJSLX"] == "2"


def test_outbox_versions_are_gapless_and_records_are_protocol_valid(province):
    for seq in ("201", "202", "203"):
        _to_effective(province, _new_file(province, seq=seq))
    entries = outbox.pending(province.session)
    assert [e.version for e in entries] == [1, 2, 3]
    for e in entries:
        record_from_json(e.record)
    assert province.session.query(TeacherHistory).count() > 0
