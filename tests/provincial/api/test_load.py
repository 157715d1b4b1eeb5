"""SQLite under load (issue 17 item 6), on SQLite and PostgreSQL: a school edits while another imports a large
file as a task, and every edit succeeds; lock contention answers 503 storage_busy with Retry-After, never 500."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from common import migrations
from common.config import DatabaseConfig
from common.db import create_db_engine, session_scope, storage_error
from common.errors import StorageBusyError
from common.http import runtime_of
from common.protection import DataKeys, install
from provincial_node import MIGRATIONS_DIR
from provincial_node.tasks import runner as task_runner
from provincial_node.tasks.models import Task
from tests.factories import GOOD_RECORDS
from tests.provincial.api.test_api import call, new_file
from tests.provincial.api.test_tasks_api import _jbxx_csv, _start

ROWS, CHUNK = 240, 20


def test_a_school_edits_while_another_imports(app, tokens):
    rt = runtime_of(app)
    chunked = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, import_chunk_rows=CHUNK))
    teacher = new_file(app, tokens, "801", school="2144000002", who="s2_info")  # school 2's clerk edits this file
    task = _start(app, tokens, _jbxx_csv(app, [f"{n:03d}" for n in range(ROWS)], birth="19820202")).json
    assert task_runner.claim_next(chunked, "load-test", task["id"]) == task["id"]
    edits_during = threading.Event()
    halfway = threading.Event()
    edited_during: list[int] = []

    def progress(done, total):
        if total and done >= total // 2 and not halfway.is_set():
            halfway.set()  # the import waits (between chunks) until the other school has edited meanwhile
            assert edits_during.wait(120), "no edit got through while the import ran"

    outcome: list[str] = []
    importer = threading.Thread(
        target=lambda: outcome.append(task_runner.run_task(chunked, task["id"], "load-test", on_progress=progress))
    )
    importer.start()
    statuses = []
    n = 0
    while importer.is_alive() or n < 3:
        n += 1
        body = {**GOOD_RECORDS["LXFS"], "TXDZ": f"广州市海珠区第{n}号"}
        r = call(app, tokens, "s2_info", "PUT", f"/api/v1/teachers/{teacher}/groups/LXFS", json=body)
        statuses.append(r.status_code)
        with session_scope(rt.session_factory) as s:
            running = s.get(Task, task["id"]).state == "running"
        if running and r.status_code == 200:
            edited_during.append(n)
            if halfway.is_set() and len(edited_during) >= 3:
                edits_during.set()
    importer.join(120)
    assert outcome == ["done"]
    assert set(statuses) == {200}, statuses  # no edit failed, none answered 500 or 503
    assert len(edited_during) >= 3  # edits went through while the import was running
    got = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert (got["result"]["created"], got["result"]["failed"]) == (ROWS, 0), got["result"]["errors"][:3]
    file = call(app, tokens, "s2_info", "GET", f"/api/v1/teachers/{teacher}").json
    assert file["draft"]["LXFS"]["TXDZ"] == f"广州市海珠区第{n}号"  # the last edit is the one kept


def test_a_write_that_cannot_get_the_lock_answers_503_with_retry_after(app, tokens, dialect, tmp_path):
    if dialect != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL's lock errors: test_postgresql_lock_errors_are_busy")
    teacher = new_file(app, tokens, "803", school="2144000002", who="s2_info")
    rt = runtime_of(app)
    impatient = create_db_engine(DatabaseConfig(str(rt.engine.url), busy_timeout_ms=100))
    install(impatient, DataKeys.load(rt.config.data_key_file))  # the node's data key, as build_runtime does
    app.extensions["tmis"] = dataclasses.replace(
        rt, engine=impatient, session_factory=rt.session_factory.__class__(bind=impatient, expire_on_commit=False)
    )
    try:
        holder = sqlite3.connect(rt.engine.url.database, isolation_level=None, timeout=0.1)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock (an import's chunk, a sync round)
        r = call(app, tokens, "s2_info", "PUT", f"/api/v1/teachers/{teacher}/groups/LXFS", json=GOOD_RECORDS["LXFS"])
        assert r.status_code == 503 and r.json["code"] == "storage_busy", r.json
        assert r.headers["Retry-After"] == str(r.json["details"]["retry_after"])
        holder.execute("ROLLBACK")
        holder.close()
        r = call(app, tokens, "s2_info", "PUT", f"/api/v1/teachers/{teacher}/groups/LXFS", json=GOOD_RECORDS["LXFS"])
        assert r.status_code == 200  # the same request again, once the lock is free
    finally:
        app.extensions["tmis"] = rt
        impatient.dispose()


def test_postgresql_lock_errors_are_busy(dialect, database_url_factory):
    if dialect != "postgresql":
        pytest.skip("PostgreSQL's lock timeout")
    engine = create_db_engine(DatabaseConfig(database_url_factory("locks")))
    migrations.upgrade(engine, MIGRATIONS_DIR)
    other = create_engine(engine.url)
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO counter (name, value) VALUES ('probe', 0)"))
        with other.connect() as holder:
            holder.begin()
            holder.execute(text("UPDATE counter SET value = value + 1 WHERE name = 'probe'"))  # holds the row lock
            with engine.connect() as c:
                c.begin()
                c.execute(text("SET LOCAL lock_timeout = '50ms'"))
                with pytest.raises(SQLAlchemyError) as exc:
                    c.execute(text("UPDATE counter SET value = value + 1 WHERE name = 'probe'"))
            err = storage_error(exc.value)
            assert isinstance(err, StorageBusyError) and (err.code, err.http_status) == ("storage_busy", 503)
    finally:
        other.dispose()
        engine.dispose()
