"""Database layer on SQLite and PostgreSQL: migrations, UTC datetimes, transactions, drift, health."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common import migrations
from common.config import DatabaseConfig
from common.db import create_db_engine, make_base, make_session_factory, session_scope
from common.errors import StorageConflictError
from common.http import runtime_of
from common.protection import DataKeys
from national_node.config import config_from_env as national_config_from_env
from provincial_node.config import config_from_env as provincial_config_from_env
from tests.conftest import NODES


def _models(node: str):
    return importlib.import_module(f"{NODES[node]}.db")


def test_migrations_build_the_schema_at_head(node_engine, node):
    package = importlib.import_module(NODES[node])
    assert migrations.current_revision(node_engine) == migrations.head_revision(package.MIGRATIONS_DIR)
    assert "node_setting" in sa.inspect(node_engine).get_table_names()


def test_models_and_migrations_do_not_drift(node_engine, node):
    package = importlib.import_module(NODES[node])
    assert migrations.check_drift(node_engine, package.MIGRATIONS_DIR) == []


_BATCH_FILES = {"national": [("batch", "data"), ("evidence", "offered_data")], "province": [("sync_batch", "data")]}


def test_batch_files_are_compressed_with_lz4_on_postgresql(node_engine, node):
    """Stored batch files are half a megabyte each; lz4 costs the server a sixth of pglz (docs/performance.md).
    SQLite has no such setting; on PostgreSQL without lz4 the migration leaves the default."""
    with node_engine.connect() as c:
        if c.dialect.name != "postgresql":
            return
        lz4 = c.execute(
            sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
        for table, column in _BATCH_FILES[node]:
            method = c.execute(
                sa.text(
                    "SELECT attcompression FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = :c"
                ),
                {"t": table, "c": column},
            ).scalar()
            assert method == ("l" if lz4 else ""), (table, column, method)


def test_drift_is_detected(database_url_factory):
    from provincial_node import MIGRATIONS_DIR
    from provincial_node.db import Base

    engine = create_db_engine(DatabaseConfig(database_url_factory("drift")))
    migrations.upgrade(engine, MIGRATIONS_DIR)
    extra = sa.Table("not_in_migrations", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        diffs = migrations.check_drift(engine, MIGRATIONS_DIR)
    finally:
        Base.metadata.remove(extra)
        engine.dispose()
    assert any("not_in_migrations" in d for d in diffs)


def test_datetimes_are_timezone_aware_utc(db_session: Session, node):
    NodeSetting = _models(node).NodeSetting
    beijing = dt.timezone(dt.timedelta(hours=8))
    db_session.add(NodeSetting(key="k", value="v", updated_at=dt.datetime(2026, 3, 1, 8, 0, tzinfo=beijing)))
    db_session.flush()
    db_session.expire_all()
    row = db_session.get(NodeSetting, "k")
    assert row.updated_at == dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
    assert row.updated_at.tzinfo is not None


def test_naive_datetimes_are_refused(db_session: Session, node):
    NodeSetting = _models(node).NodeSetting
    db_session.add(NodeSetting(key="naive", value="v", updated_at=dt.datetime(2026, 3, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive datetime refused"):
        db_session.flush()


def test_savepoint_rollback_isolates_tests_part_1(db_session: Session, node):
    db_session.add(_models(node).NodeSetting(key="isolation", value="1"))
    db_session.commit()  # releases a SAVEPOINT only; the outer transaction is rolled back after the test


def test_savepoint_rollback_isolates_tests_part_2(db_session: Session, node):
    assert db_session.get(_models(node).NodeSetting, "isolation") is None


def test_foreign_keys_and_real_transactions(database_url_factory):
    Base = make_base("FkBase")

    class Parent(Base):
        __tablename__ = "parent"
        id = sa.Column(sa.Integer, primary_key=True)

    class Child(Base):
        __tablename__ = "child"
        id = sa.Column(sa.Integer, primary_key=True)
        parent_id = sa.Column(sa.Integer, sa.ForeignKey("parent.id"), nullable=False)

    engine = create_db_engine(DatabaseConfig(database_url_factory("fk")))
    Base.metadata.create_all(engine)  # a throwaway schema for the engine's own behaviour, not a node schema
    factory = make_session_factory(engine)
    with pytest.raises(StorageConflictError), session_scope(factory) as s:
        s.add(Child(id=1, parent_id=42))
    # a failed transaction leaves nothing behind, and a savepoint rolls back on its own
    with session_scope(factory) as s:
        s.add(Parent(id=1))
        nested = s.begin_nested()
        s.add(Parent(id=2))
        s.flush()
        nested.rollback()
    with session_scope(factory) as s:
        assert [p.id for p in s.query(Parent).all()] == [1]
        assert s.query(Child).count() == 0
    engine.dispose()


@pytest.mark.parametrize("kind", ["province", "national"])
def test_health_endpoint_reports_schema_state(database_url_factory, kind, tmp_path):
    env = {"TMIS_DATA_DIR": str(tmp_path), "TMIS_DATABASE_URL": database_url_factory(f"health_{kind}")}
    if kind == "province":
        from provincial_node import MIGRATIONS_DIR
        from provincial_node.app import create_app

        config = provincial_config_from_env({**env, "TMIS_PROVINCE_CODE": "44"}, testing=True)
        DataKeys.generate().save(config.data_key_file)
    else:
        from national_node import MIGRATIONS_DIR
        from national_node.app import create_app

        config = national_config_from_env(env, testing=True)
    app = create_app(config)
    client = app.test_client()
    before = client.get("/health")
    after_status = {"province": {"status": "up"}, "national": None}[kind]
    if kind == "province":  # the provincial node says only up or down (nothing to fingerprint)
        assert before.status_code == 503 and before.json == {"status": "down"}
    else:
        assert before.status_code == 503 and before.json["status"] == "migrations_pending"
    migrations.upgrade(runtime_of(app).engine, MIGRATIONS_DIR)
    after = client.get("/health")
    if after_status:
        assert after.status_code == 200 and after.json == after_status
    else:
        assert after.status_code == 200 and after.json["status"] == "ok" and after.json["node"] == kind
    missing = client.get("/no/such/thing")
    if kind == "province":  # outside /api/ the provincial node answers people: a Chinese error page
        assert missing.status_code == 404 and "页面或数据不存在" in missing.text
    else:
        assert missing.status_code == 404 and missing.json["code"] == "not_found"
    runtime_of(app).engine.dispose()


def test_bulk_insert_writes_json_and_aware_datetimes(db_session: Session, node):
    """COPY on PostgreSQL, a multi-row INSERT on SQLite: the rows read back the same through the ORM."""
    from common.db import bulk_insert

    at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    doc = [{"JBXX": {"XM": "李明", "N": i, "L": ["a", "é", 'q"\\']}} for i in range(3)]
    if node == "national":
        from national_node.intake.models import TeacherCoreHistory as model

        rows = [
            {
                "teacher_number": f"44000000000{i}X",
                "province_code": "44",
                "version": i,
                "batch_hash": "ab" * 32,
                "op": "upsert",
                "fields": doc[i],
                "applied_at": at,
            }
            for i in range(3)
        ]
        read = lambda r: (r.version, r.fields, r.applied_at)  # noqa: E731
        order, when = model.version, "applied_at"
    else:
        from provincial_node.audit_trail.models import AuditEvent as model

        rows = [
            {
                "at": at,
                "actor_id": None,
                "action": "bulk",
                "target_type": "t",
                "target_id": str(i),
                "unit_path": "/1/",
                "reason": None,
                "details": doc[i],
                "seq": 10**6 + i,  # the chain columns: these rows are not a chain
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
            }
            for i in range(3)
        ]
        read = lambda r: (int(r.target_id), r.details, r.at)  # noqa: E731
        order, when = model.target_id, "at"
    bulk_insert(db_session, model, rows)
    got = db_session.scalars(sa.select(model).order_by(order)).all()
    assert [read(r) for r in got] == [(i, doc[i], at) for i in range(3)]
    with pytest.raises(ValueError, match="naive datetime"):
        bulk_insert(db_session, model, [{**rows[0], when: dt.datetime(2026, 3, 1)}])


_NASTY = [
    "\t",
    "\n",
    "\r",
    "\\",
    "\\N",
    "\\.",
    "a\\tb",
    "中文\t\n",
    "\x01",
    "\u2028",
    "'",
    '"',
    "NULL",
    "\\x00",
    "😀",
    "",
    " ",
    "\\\\",
    "\r\n",
    "x\ty\tz",
]


@pytest.mark.parametrize("node", ["province"])
def test_bulk_insert_round_trips_copy_special_characters(db_session):
    """COPY's text format is written by hand on PostgreSQL: every escape must read back unchanged (SQLite takes
    the INSERT path; the same values must read back there too). One table with text and JSON columns, the
    provincial audit trail, is enough."""
    _round_trip(db_session)


def _round_trip(db_session: Session) -> None:
    import random

    from common.db import bulk_insert, one_of
    from provincial_node.audit_trail.models import AuditEvent

    rnd = random.Random(7)
    alphabet = "ab\t\n\r\\N.\"'中\u2028😀{}[]:,"
    texts = _NASTY + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))) for _ in range(200)]
    at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    seq = iter(range(10**6, 2 * 10**6))  # the audit table's chain columns: these rows are not a chain

    def chained(row: dict) -> dict:
        return {**row, "seq": next(seq), "prev_hash": "0" * 64, "hash": "0" * 64}

    rows = [
        {
            "at": at,
            "actor_id": None,
            "action": "bulk",
            "target_type": "t",
            "target_id": str(i),
            "unit_path": "/1/",
            "reason": text if i % 7 else None,
            "details": {text: [text, i, None, True], "k": {"v": text}},
        }
        for i, text in enumerate(texts)
    ]
    bulk_insert(db_session, AuditEvent, [chained(r) for r in rows])
    got = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bulk")).all()
    assert sorted(((int(r.target_id), r.reason, r.details) for r in got), key=lambda x: x[0]) == [
        (i, r["reason"], r["details"]) for i, r in enumerate(rows)
    ]
    # JSON already encoded (RawJSON) goes into COPY as it is, alone in a column or mixed with values
    import orjson

    from common.db import RawJSON

    for action, pick in (("raw", lambda i: True), ("mixed", lambda i: i % 2 == 0)):
        bulk_insert(
            db_session,
            AuditEvent,
            [
                chained(
                    {**r, "action": action, "details": RawJSON(orjson.dumps(r["details"])) if pick(i) else r["details"]}
                )
                for i, r in enumerate(rows)
            ],
        )
        got = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()
        assert sorted(((int(r.target_id), r.details) for r in got), key=lambda x: x[0]) == [
            (i, r["details"]) for i, r in enumerate(rows)
        ]
    # one_of sends the values as one array literal on PostgreSQL: quotes, backslashes, commas, braces, NULL and
    # spaces must match exactly themselves
    odd = [*_NASTY, "a,b", "{x}", "{", "}", 'a"b', "NuLL", "  lead", "trail  "]
    bulk_insert(db_session, AuditEvent, [chained({**rows[0], "action": "odd", "target_id": v}) for v in odd])
    for wanted in (odd, odd[::3], ["NULL"], ["", " "], ["not there", "a,b"], []):
        found = db_session.scalars(
            sa.select(AuditEvent.target_id).where(
                AuditEvent.action == "odd", one_of(db_session, AuditEvent.target_id, wanted)
            )
        ).all()
        assert sorted(found) == sorted(set(wanted) & set(odd))


@pytest.mark.parametrize("node", ["national"])
def test_bulk_update_changes_exactly_the_named_rows(db_session):
    """COPY into a scratch table and one UPDATE … FROM on PostgreSQL, the ORM's bulk update on SQLite: the rows
    named by their key get every given column, twice in one transaction, with escapes and RawJSON; others stay."""
    _bulk_update(db_session)


def _bulk_update(s: Session) -> None:
    import orjson

    from common.db import RawJSON, bulk_insert, bulk_update
    from national_node.intake.models import TeacherCore

    at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    later = at + dt.timedelta(hours=1)

    def row(i: int, version: int, text: str) -> dict:
        return {
            "teacher_number": f"44{i:011d}",
            "version": version,
            "op": "upsert",
            "fields": {"JBXX": {"XM": text, "N": i}},
            "withheld": ["JBXX.GH"],
            "identity_key": None if i % 2 else f"{i:064d}",
            "updated_at": at,
        }

    bulk_insert(s, TeacherCore, [{**row(i, 1, "旧"), "province_code": "44"} for i in range(10)])
    first = [row(i, 2, _NASTY[i]) for i in range(0, 10, 2)]
    first[0]["fields"] = RawJSON(orjson.dumps(first[0]["fields"]))
    bulk_update(s, TeacherCore, first, "teacher_number")
    bulk_update(s, TeacherCore, [{**row(4, 3, "再改"), "updated_at": later}], "teacher_number")
    s.expire_all()
    got = {
        r.teacher_number: (r.version, r.fields["JBXX"]["XM"], r.identity_key, r.updated_at)
        for r in s.scalars(sa.select(TeacherCore))
    }
    expected = {f"44{i:011d}": (1, "旧", None if i % 2 else f"{i:064d}", at) for i in range(10)}
    expected.update({f"44{i:011d}": (2, _NASTY[i], f"{i:064d}", at) for i in range(0, 10, 2)})
    expected[f"44{4:011d}"] = (3, "再改", f"{4:064d}", later)
    assert got == expected


@pytest.mark.parametrize("node", ["national"])
def test_one_of_is_an_array_postgresql_reads_once_not_once_per_row(db_session, dialect):
    """On PostgreSQL ``one_of`` is ``= ANY(array)`` whose array is a constant of the column's array type. Sent as
    a typed text parameter and cast (``CAST($1::VARCHAR AS VARCHAR(68)[])``), the cast stayed in the plan and a
    sequential scan parsed the whole literal again for every row: the duplicate-identity query of a 1 000-record
    batch took 3.8 s against 7 000 rows of other provinces instead of 6 ms. On SQLite it is an ``IN`` list."""
    from common.db import one_of
    from national_node.intake.models import TeacherCore

    keys = [f"bi1:{i:064x}" for i in range(50)]
    conn = db_session.connection()
    stmt = sa.select(TeacherCore.teacher_number).where(one_of(db_session, TeacherCore.identity_key, keys))
    if dialect == "sqlite":
        assert " IN (" in str(stmt.compile(conn))
        return
    conn.exec_driver_sql("SET LOCAL enable_indexscan = off")  # the plan of a table never analysed
    conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
    compiled = stmt.compile(conn)
    plan = "\n".join(conn.exec_driver_sql("EXPLAIN VERBOSE " + str(compiled), compiled.params).scalars())
    assert "Seq Scan" in plan
    assert re.search(r"= ANY \('\{[^']*\}'::(text|character varying(\(68\))?)\[\]\)", plan), plan
    assert "::character varying)::" not in plan, plan
