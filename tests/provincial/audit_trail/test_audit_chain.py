"""The audit trail you can read (issue 16, item 6) on SQLite and PostgreSQL: the hash chain detects an edited
and a deleted entry, the table is append-only, reading a whole file is audited, an account reading too many
files raises an alert to the unit above, and the trail is scoped like everything else."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from common.errors import PermissionDeniedError
from provincial_node.audit_trail import trail
from provincial_node.audit_trail.models import AuditEvent
from provincial_node.context import Settings
from provincial_node.teacher_files import files
from tests.factories import resident_id
from tests.provincial.conftest import Province


def _events(p: Province, n: int = 5) -> None:
    for i in range(n):
        trail.record(p.ctx("school1_admin"), f"test.{i}", "unit", i, p.units["2144000001"].path, reason=f"第{i}条")
    p.session.flush()


def _without_guard(p: Province, statement: str, **params) -> None:
    """What someone with database access could do: switch the append-only guard off, change the table."""
    conn = p.session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        conn.execute(sa.text(statement), params)
        conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    else:
        conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        conn.execute(sa.text(statement), params)
    p.session.expire_all()


def test_an_intact_chain_verifies(province):
    _events(province)
    verdict = trail.verify_chain(province.session)
    assert verdict.ok and verdict.events >= 5 and verdict.head_seq == verdict.events


def test_an_edited_entry_is_detected(province):
    _events(province)
    seq = province.session.scalar(sa.select(AuditEvent.seq).where(AuditEvent.action == "test.2"))
    _without_guard(province, "UPDATE audit_event SET reason = 'nothing happened' WHERE seq = :s", s=seq)
    verdict = trail.verify_chain(province.session)
    assert not verdict.ok
    assert [(b.seq, b.kind) for b in verdict.breaks] == [(seq, "edited")]


def test_a_deleted_entry_is_detected(province):
    _events(province)
    seq = province.session.scalar(sa.select(AuditEvent.seq).where(AuditEvent.action == "test.3"))
    _without_guard(province, "DELETE FROM audit_event WHERE seq = :s", s=seq)
    verdict = trail.verify_chain(province.session)
    assert [(b.seq, b.kind) for b in verdict.breaks] == [(seq, "missing")]


def test_deleting_the_newest_entries_is_detected(province):
    _events(province)
    last = province.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    _without_guard(province, "DELETE FROM audit_event WHERE seq >= :s", s=last - 1)
    verdict = trail.verify_chain(province.session)
    assert [(b.seq, b.kind) for b in verdict.breaks] == [(last - 1, "missing")]


@pytest.mark.parametrize("statement", ["UPDATE audit_event SET reason = 'x'", "DELETE FROM audit_event"])
def test_the_audit_table_is_append_only(province, statement):
    _events(province, 1)
    nested = province.session.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        province.session.execute(sa.text(statement))
    nested.rollback()


def _effective_file(p: Province, seq: str):
    c = p.ctx("school1_info")
    t = files.register_teacher(
        c,
        p.units["2144000001"].id,
        {"XM": f"教师{seq}", "SFZJLXM": "1", "SFZJH": resident_id("440106", "19880315", seq)},
    )
    return t


def test_reading_a_whole_file_is_an_audited_event(province):
    t = _effective_file(province, "601")
    files.read_file(province.ctx("tianhe_info"), t.id)
    (event,) = trail.query(province.ctx("tianhe_admin"), action="file.read")
    assert event.actor_id == province.actor("tianhe_info").account_id and event.target_id == t.teacher_number


def test_reading_more_files_than_allowed_in_an_hour_alerts_the_unit_above(province):
    limit = 3
    reader = dataclasses.replace(province.ctx("school1_info"), settings=Settings(read_alert_per_hour=limit))
    ids = [_effective_file(province, f"{610 + i}").id for i in range(limit + 2)]
    for tid in ids:
        files.read_file(reader, tid)
    alerts = trail.query(province.ctx("tianhe_info"), action="alert.read_volume")  # the county above sees it
    assert len(alerts) == 1  # once per account and hour, not once per read
    assert alerts[0].details["username"] == "school1_info" and alerts[0].details["reads"] == limit + 1
    assert trail.query(province.ctx("school1_rev"), action="alert.read_volume") == []  # not the school itself


def test_query_and_training_accounts_do_not_read_the_audit_trail(province):
    with pytest.raises(PermissionDeniedError):
        trail.query(province.ctx("tianhe_query"))
