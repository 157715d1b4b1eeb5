"""Outbox versions stay gapless with concurrent writers, some of which roll back (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from common import migrations
from common.config import DatabaseConfig
from common.db import create_db_engine, make_session_factory
from common.protection import DataKeys, install
from provincial_node import MIGRATIONS_DIR
from provincial_node.accounts.models import Unit
from provincial_node.db import next_value
from provincial_node.sync.models import OutboxEntry
from provincial_node.teacher_files.models import Teacher
from sync_protocol.identifiers import make_teacher_number

WRITERS, PER_WRITER = 8, 15


def test_outbox_versions_are_gapless_under_concurrent_writers(database_url_factory, dialect):
    pool = {"pool_size": WRITERS + 2} if dialect == "postgresql" else {}
    engine = install(
        create_db_engine(DatabaseConfig(database_url_factory("outbox_concurrency")), **pool), DataKeys.generate()
    )
    migrations.upgrade(engine, MIGRATIONS_DIR)
    factory = make_session_factory(engine)
    with factory.begin() as s:
        unit = Unit(code="2144000001", name="学校", level="school", path="/1/")
        s.add(unit)
        s.flush()
        s.add(
            Teacher(
                teacher_number=make_teacher_number("44", 1),
                unit_id=unit.id,
                doc_type="1",
                doc_number="x",
                name="教师",
                status="effective",
                data={},
                draft={},
            )
        )
    with factory() as s:
        teacher_id = s.scalar(select(Teacher.id))
    errors: list[BaseException] = []
    barrier = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_WRITER):
                with factory() as s:
                    s.begin()
                    v = next_value(s, "outbox")
                    s.add(
                        OutboxEntry(
                            version=v,
                            teacher_id=teacher_id,
                            teacher_number=make_teacher_number("44", 1),
                            op="upsert",
                            record={"n": n, "i": i},
                            record_bytes=b"{}",  # not a core record: only the version counter is under test
                            leaf_hash=bytes(32),
                        )
                    )
                    if (n + i) % 5 == 0:
                        s.rollback()  # an aborted change gives its version back
                    else:
                        s.commit()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with factory() as s:
        versions = list(s.scalars(select(OutboxEntry.version).order_by(OutboxEntry.version)))
    committed = sum(1 for n in range(WRITERS) for i in range(PER_WRITER) if (n + i) % 5)
    assert versions == list(range(1, committed + 1))
    engine.dispose()
