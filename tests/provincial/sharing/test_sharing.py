"""Data-sharing applications (信息共享, 暂行办法 art. 31; issue 16, item 7) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

import pytest
from sqlalchemy import select

from common.catalogue import load_catalogue
from common.catalogue.sharing import ShareClass, listed, share_class
from common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from provincial_node.audit_trail import trail
from provincial_node.sharing import applications
from provincial_node.sharing.models import SharingExport
from provincial_node.teacher_files import files, review
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.conftest import Province

TODAY = dt.date(2026, 12, 7)  # a Monday
NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _c(p: Province, who: str, now: dt.datetime = NOW):
    return p.ctx(who, now=now)


def _apply(p: Province, who: str = "school1_info", units: tuple[str, ...] = ("2144000001",), **kw):
    body = {
        "purpose": "区县教师队伍结构分析",
        "scenario": "教育局年度报告",
        "unit_ids": [p.units[u].id for u in units],
        "fields": ["JBXX.XBM", "JBXX.ZGXLM"],
        "period_from": TODAY,
        "period_to": TODAY + dt.timedelta(days=90),
        **kw,
    }
    return applications.apply(_c(p, who), **body)


def _effective(p: Province, seq: str) -> None:
    basic = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
    basic.update(SFZJH=resident_id("440106", "19880315", seq), XBM="1" if int(seq[-1]) % 2 else "2", XM=f"教师{seq}")
    t = files.register_teacher(
        p.ctx("school1_info"), p.units["2144000001"].id, {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")}
    )
    files.update_group(p.ctx("school1_info"), t.id, "JBXX", basic)
    files.submit(p.ctx("school1_info"), t.id)
    review.review(p.ctx("school1_rev"), t.id, "approve")
    review.review(p.ctx("tianhe_info"), t.id, "approve")


def test_every_field_has_a_class_and_the_data_names_only_real_fields():
    cat = load_catalogue()
    groups, fields = listed()
    assert set(groups) == set(cat.groups)
    for g, f in fields:
        assert cat.group(g).has_field(f), (g, f)
    assert share_class("JBXX", "SFZJH") == ShareClass.WITHHELD
    assert share_class("LXFS", "SJ") == ShareClass.WITHHELD
    assert share_class("JBXX", "XBM") == ShareClass.UNCONDITIONAL
    assert share_class("JBXX", "XM") == ShareClass.CONDITIONAL
    assert share_class("JBXX", "X_LOCAL") == ShareClass.CONDITIONAL  # custom indicators


def test_an_application_naming_withheld_data_is_refused_with_the_fields(province):
    with pytest.raises(ValidationError) as exc:
        _apply(province, fields=["JBXX.SFZJH", "JBXX.XM"], groups=["LXFS"], purpose="")
    named = {(e["field"], e["value"]) for e in exc.value.details["errors"]}
    assert ("fields", "JBXX.SFZJH") in named and ("groups", "LXFS") in named and ("purpose", None) in named
    with pytest.raises(ValidationError):
        _apply(province, period_to=TODAY + dt.timedelta(days=400))
    app = _apply(province, groups=["JBXX"], fields=[])  # a whole group: its shareable fields only
    assert "JBXX.SFZJH" not in app.fields and "JBXX.XM" in app.fields and app.share_class == "conditional"


def test_the_owning_level_reviews_within_working_days(province):
    p = province
    same_county = _apply(p, units=("2144000001", "2144000002"))
    assert same_county.reviewer_unit_id == p.units["440106"].id
    assert same_county.share_class == "unconditional" and same_county.due_at == NOW + dt.timedelta(days=2)
    two_counties = _apply(p, units=("2144000001", "3444000003"), fields=["JBXX.XM"])
    assert two_counties.reviewer_unit_id == p.units["440100"].id
    assert two_counties.due_at == NOW + dt.timedelta(days=7)  # 5 working days from a Monday: the next Monday
    own_subtree = _apply(p, who="tianhe_info", units=("440106",))
    assert own_subtree.reviewer_unit_id == p.units["440100"].id  # nobody approves its own application
    late = _c(p, "tianhe_info", NOW + dt.timedelta(days=3))
    assert applications.is_overdue(same_county, late.now)
    assert same_county in applications.in_scope(late)


def test_decisions_by_the_owning_level_only_and_refusals_with_reasons(province):
    p = province
    app = _apply(p, units=("2144000001", "2144000002"))
    with pytest.raises(PermissionDeniedError):  # the school cannot decide its own application
        applications.decide(_c(p, "school1_rev"), app.id, "approve", None)
    with pytest.raises(NotFoundError):  # another county does not see it
        applications.decide(_c(p, "haizhu_info"), app.id, "approve", None)
    with pytest.raises(PermissionDeniedError):  # query users do not review
        applications.decide(_c(p, "tianhe_query"), app.id, "approve", None)
    with pytest.raises(ValidationError):
        applications.decide(_c(p, "tianhe_info"), app.id, "refuse", "")
    applications.decide(_c(p, "tianhe_info"), app.id, "refuse", "用途与申请字段不符")
    assert app.status == "refused" and app.decision_reason == "用途与申请字段不符"
    with pytest.raises(ConflictError):
        applications.decide(_c(p, "tianhe_info"), app.id, "approve", None)


def test_an_export_for_sharing_checks_the_grant_and_is_recorded(province):
    p = province
    _effective(p, "801")
    _effective(p, "802")
    app = _apply(p, units=("2144000001",), fields=["JBXX.XBM", "JBXX.ZGXLM"])
    with pytest.raises(ConflictError):  # not granted yet
        applications.export(_c(p, "school1_info"), app.id, "csv")
    applications.decide(_c(p, "tianhe_info"), app.id, "approve", "同意")
    data = applications.export(_c(p, "school1_info"), app.id, "csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["教师编号(JSBH)", "性别(JBXX.XBM)", "最高学历(JBXX.ZGXLM)"]
    assert len(rows) == 3 and all(r[1] in ("1", "2") for r in rows[1:])
    text = data.decode("utf-8-sig")
    assert "教师801" not in text and resident_id("440106", "19880315", "801") not in text  # only what was granted
    with pytest.raises(ConflictError):  # outside the period
        applications.export(_c(p, "school1_info", NOW + dt.timedelta(days=120)), app.id, "csv")
    with pytest.raises(PermissionDeniedError):  # another unit cannot use the grant
        applications.export(_c(p, "tianhe_info"), app.id, "csv")
    (record,) = p.session.scalars(select(SharingExport).where(SharingExport.application_id == app.id)).all()
    assert record.teachers == 2 and record.fields == ["JBXX.XBM", "JBXX.ZGXLM"]
    actions = {e.action for e in trail.query(_c(p, "tianhe_info"))}
    assert {"sharing.apply", "sharing.approve", "sharing.export"} <= actions


def test_the_sharing_review_period_is_the_provinces(province):
    p = province
    c = dataclasses.replace(
        _c(p, "school1_info"), settings=dataclasses.replace(_c(p, "school1_info").settings, sharing_review_days=10)
    )
    app = applications.apply(
        c,
        purpose="研究",
        scenario="课题",
        unit_ids=[p.units["2144000001"].id],
        fields=["JBXX.XM"],
        period_from=TODAY,
        period_to=TODAY,
    )
    assert app.due_at == NOW + dt.timedelta(days=14)
