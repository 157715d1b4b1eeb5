"""A node from before the security migration (revision 0006) upgrades: its audit events are chained by the
migration, its clear ID numbers stay readable until ``keys reencrypt`` protects them, ``serve``'s check counts
them meanwhile, and after it nothing is in clear and lookups still work; its outbox entries get their stored
batch lines (0013). Both databases."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from common import migrations
from common.config import DatabaseConfig
from common.db import UTCDateTime, create_db_engine, make_session_factory, session_scope
from common.protection import PREFIX, DataKeys, install
from provincial_node import MIGRATIONS_DIR, datakeys
from provincial_node.audit_trail import trail
from provincial_node.teacher_files import duplicates
from provincial_node.teacher_files.models import Teacher
from sync_protocol.records import CoreRecord, record_hash
from tests.factories import resident_id
from tests.helpers import ctx

T = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def _table(table_name: str, /, **cols: sa.types.TypeEngine) -> sa.TableClause:
    return sa.table(table_name, *[sa.column(c, t) for c, t in cols.items()])


UNIT = _table(
    "unit",
    id=sa.Integer(),
    code=sa.String(),
    name=sa.String(),
    level=sa.String(),
    parent_id=sa.Integer(),
    path=sa.String(),
    school_type=sa.String(),
    supervisor_id=sa.Integer(),
    active=sa.Boolean(),
    created_at=UTCDateTime(),
)
ACCOUNT = _table(
    "account",
    id=sa.Integer(),
    username=sa.String(),
    real_name=sa.String(),
    id_number=sa.String(),
    unit_id=sa.Integer(),
    role=sa.String(),
    password_hash=sa.String(),
    must_change_password=sa.Boolean(),
    failed_logins=sa.Integer(),
    disabled=sa.Boolean(),
    created_at=UTCDateTime(),
)
TEACHER = _table(
    "teacher",
    id=sa.Integer(),
    teacher_number=sa.String(),
    unit_id=sa.Integer(),
    doc_type=sa.String(),
    doc_number=sa.String(),
    name=sa.String(),
    status=sa.String(),
    ever_effective=sa.Boolean(),
    data=sa.JSON(),
    draft=sa.JSON(),
    file_version=sa.Integer(),
    created_at=UTCDateTime(),
    updated_at=UTCDateTime(),
)
HISTORY = _table(
    "teacher_history",
    teacher_id=sa.Integer(),
    at=UTCDateTime(),
    action=sa.String(),
    status_to=sa.String(),
    changes=sa.JSON(),
)
OUTBOX = _table(
    "outbox",
    version=sa.Integer(),
    teacher_id=sa.Integer(),
    teacher_number=sa.String(),
    op=sa.String(),
    record=sa.JSON(),
    created_at=UTCDateTime(),
    batch_seq=sa.Integer(),
)
AUDIT = _table(
    "audit_event",
    at=UTCDateTime(),
    action=sa.String(),
    target_type=sa.String(),
    target_id=sa.String(),
    unit_path=sa.String(),
    reason=sa.Text(),
    details=sa.JSON(),
)


def test_a_node_from_before_protection_upgrades_and_is_reencrypted(database_url_factory):
    engine = create_db_engine(DatabaseConfig(database_url_factory("upgrade")))
    migrations.upgrade(engine, MIGRATIONS_DIR, "0006")
    rid, staff = resident_id("440106", "19880315", "771"), resident_id("440106", "19790101", "772")
    with engine.begin() as c:  # what a 0006 node stored
        c.execute(
            sa.insert(UNIT),
            [
                {
                    "id": 1,
                    "code": "440000",
                    "name": "广东省教育厅",
                    "level": "province",
                    "parent_id": None,
                    "path": "/1/",
                    "school_type": None,
                    "supervisor_id": None,
                    "active": True,
                    "created_at": T,
                },
                {
                    "id": 2,
                    "code": "2144000001",
                    "name": "天河区第一小学",
                    "level": "school",
                    "parent_id": 1,
                    "path": "/1/2/",
                    "school_type": "211",
                    "supervisor_id": 1,
                    "active": True,
                    "created_at": T,
                },
            ],
        )
        c.execute(
            sa.insert(ACCOUNT),
            [
                {
                    "id": 1,
                    "username": "old_info",
                    "real_name": "老账号",
                    "id_number": staff,
                    "unit_id": 2,
                    "role": "infoadmin",
                    "password_hash": "x",
                    "must_change_password": False,
                    "failed_logins": 0,
                    "disabled": False,
                    "created_at": T,
                },
            ],
        )
        doc = {"JBXX": {"XM": "老教师", "SFZJLXM": "1", "SFZJH": rid}}
        c.execute(
            sa.insert(TEACHER),
            [
                {
                    "id": 1,
                    "teacher_number": "4400000000018",
                    "unit_id": 2,
                    "doc_type": "1",
                    "doc_number": rid,
                    "name": "老教师",
                    "status": "draft",
                    "ever_effective": False,
                    "data": {},
                    "draft": doc,
                    "file_version": 0,
                    "created_at": T,
                    "updated_at": T,
                },
            ],
        )
        changes = [{"group": "JBXX", "index": None, "field": "SFZJH", "old": None, "new": rid}]
        c.execute(
            sa.insert(HISTORY),
            [{"teacher_id": 1, "at": T, "action": "register", "status_to": "draft", "changes": changes}],
        )
        c.execute(
            sa.insert(AUDIT),
            [
                {
                    "at": T + dt.timedelta(minutes=i),
                    "action": f"old.{i}",
                    "target_type": "unit",
                    "target_id": "1",
                    "unit_path": "/1/",
                    "reason": "升级前",
                    "details": {"n": i, "名": "值"},
                }
                for i in range(3)
            ],
        )
        records = [
            CoreRecord("4400000000018", "44", v, "upsert", {"JBXX": {"XM": f"老教师{v}"}}, ("JBXX.GH",), None)
            for v in (1, 2)
        ]
        c.execute(
            sa.insert(OUTBOX),
            [
                {
                    "version": r.version,
                    "teacher_id": 1,
                    "teacher_number": r.teacher_number,
                    "op": r.op,
                    "record": r.to_json(),
                    "created_at": T,
                    "batch_seq": 1 if r.version == 1 else None,
                }
                for r in records
            ],
        )
    migrations.upgrade(engine, MIGRATIONS_DIR)
    with engine.connect() as c:  # 0013 filled the stored batch lines of the existing entries
        stored = c.execute(sa.text("SELECT record_bytes, leaf_hash FROM outbox ORDER BY version")).all()
        assert [(bytes(b), bytes(h)) for b, h in stored] == [(r.to_bytes(), record_hash(r.to_bytes())) for r in records]
    install(engine, DataKeys.generate())
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        verdict = trail.verify_chain(s)
        assert verdict.ok and verdict.events == 3  # the migration chained the events it found
        trail.record(ctx(s), "after.upgrade", "unit", 1, "/1/")
    with session_scope(factory) as s:
        assert trail.verify_chain(s).ok and trail.verify_chain(s).events == 4
        assert datakeys.unprotected_rows(s) == 2  # serve refuses to start now
        assert s.get(Teacher, 1).doc_number == rid  # clear values stay readable meanwhile
    result = datakeys.reencrypt(factory)
    assert result.rows == {"teacher": 1, "teacher_history": 1, "account": 1, "transfer": 0, "seal_key": 0}
    with session_scope(factory) as s:
        assert datakeys.unprotected_rows(s) == 0
        raw = s.connection().execute(sa.text("SELECT doc_number, draft FROM teacher")).one()
        assert raw[0].startswith(PREFIX) and rid not in str(raw[1])
        history = s.connection().execute(sa.text("SELECT changes FROM teacher_history")).scalar_one()
        assert rid not in str(history) and PREFIX in str(history)
        assert staff not in str(s.connection().execute(sa.text("SELECT id_number FROM account")).scalar_one())
        assert duplicates.find_by_identity(ctx(s), "1", rid).id == 1
        assert s.get(Teacher, 1).draft["JBXX"]["SFZJH"] == rid
    engine.dispose()
