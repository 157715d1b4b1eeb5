"""Background tasks (后台任务) through the API on SQLite and PostgreSQL, run inline: an import as a task with
progress and result, scope, cancel (queued, and running between chunks), a failed file, a task interrupted by a
stopped process, and the synchronous import endpoint still there."""

from __future__ import annotations

import csv
import dataclasses
import io

from sqlalchemy import update

from common.db import session_scope, utcnow
from common.http import runtime_of
from provincial_node.tasks import runner as task_runner
from provincial_node.tasks.models import Task
from provincial_node.teacher_files import sheets
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.api.test_api import call, unit_id

WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _jbxx_csv(app, seqs, birth="19790101"):
    catalogue = runtime_of(app).catalogue
    group = catalogue.group("JBXX")
    codes = [f.code for f in sheets.columns(group)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(sheets.header_row(group))
    for seq in seqs:
        rec = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
        rec.update(
            SFZJH=resident_id("440106", birth, seq),
            CSRQ=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            XBM="1" if int(seq[-1]) % 2 else "2",
            XM=f"任务{seq}",
            ZZMMM="01",
        )
        w.writerow([rec.get(c, "") for c in codes])
    return ("\ufeff" + buf.getvalue()).encode()


def _start(app, tokens, data, who="s1_info", group="JBXX"):
    school = unit_id(app, tokens, "2144000001")
    r = call(app, tokens, who, "POST", f"/api/v1/imports/{group}/tasks?school_id={school}&format=csv", data=data)
    return r


def test_an_import_runs_as_a_task_with_progress_and_a_result(app, tokens):
    r = _start(app, tokens, _jbxx_csv(app, ["701", "702", "703"]))
    assert r.status_code == 202, r.json
    task = r.json
    assert (task["state"], task["state_label"], task["kind"], task["kind_label"]) == (
        "queued",
        "排队中",
        "files.import",
        "批量导入",
    )
    assert r.headers["Location"] == f"/api/v1/tasks/{task['id']}"
    assert task_runner.run_pending(runtime_of(app)) == [task["id"]]
    done = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert (done["state"], done["done"], done["total"], done["percent"]) == ("done", 3, 3, 100)
    assert (done["result"]["created"], done["result"]["failed"], done["error"]) == (3, 0, None)
    # the county sees its school's task; another school and another county do not
    assert task["id"] in [t["id"] for t in call(app, tokens, "th_info", "GET", "/api/v1/tasks").json["tasks"]]
    for who in ("s2_info", "hz_info"):
        assert call(app, tokens, who, "GET", f"/api/v1/tasks/{task['id']}").status_code == 404
        assert task["id"] not in [t["id"] for t in call(app, tokens, who, "GET", "/api/v1/tasks").json["tasks"]]
    with session_scope(runtime_of(app).session_factory) as s:
        assert s.get(Task, task["id"]).payload is None  # the uploaded file is dropped when the task ends
    r = call(app, tokens, "s1_info", "POST", f"/api/v1/tasks/{task['id']}/cancel")
    assert r.status_code == 409  # finished tasks cannot be cancelled


def test_a_queued_task_is_cancelled_at_once(app, tokens):
    task = _start(app, tokens, _jbxx_csv(app, ["711"])).json
    assert call(app, tokens, "s2_info", "POST", f"/api/v1/tasks/{task['id']}/cancel").status_code == 404
    r = call(app, tokens, "s1_info", "POST", f"/api/v1/tasks/{task['id']}/cancel")
    assert (r.status_code, r.json["state"]) == (200, "cancelled")
    assert task_runner.run_pending(runtime_of(app)) == []
    names = [t["name"] for t in call(app, tokens, "s1_info", "GET", "/api/v1/teachers").json["teachers"]]
    assert "任务711" not in names


def test_a_running_import_stops_between_chunks_when_cancelled(app, tokens):
    rt = runtime_of(app)
    small = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, import_chunk_rows=2))
    seqs = [f"{n}" for n in range(721, 729)]  # 8 rows, 4 chunks
    task = _start(app, tokens, _jbxx_csv(app, seqs)).json
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:  # after the first chunk committed, the clerk presses 取消
            r = call(app, tokens, "s1_info", "POST", f"/api/v1/tasks/{task['id']}/cancel")
            assert r.json["cancel_requested"] and r.json["state"] == "running"

    runner = "test-runner"
    assert task_runner.claim_next(small, runner, task["id"]) == task["id"]
    assert task_runner.run_task(small, task["id"], runner, on_progress=progress) == "cancelled"
    got = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert (got["state"], got["done"], got["total"]) == ("cancelled", 2, 8)
    assert got["result"]["created"] == 2 and "cancelled by s1_info after 2 of 8" in got["error"]
    names = {t["name"] for t in call(app, tokens, "s1_info", "GET", "/api/v1/teachers?limit=1000").json["teachers"]}
    assert {"任务721", "任务722"} <= names and not {f"任务{n}" for n in seqs[2:]} & names  # the chunk before stays
    events = call(app, tokens, "p_admin", "GET", "/api/v1/audit-events?action=files.import").json["events"]
    assert any(e["details"].get("task") == task["id"] and e["details"].get("cancelled") for e in events)


def test_a_bad_file_fails_the_task_with_its_errors(app, tokens):
    task = _start(app, tokens, b"\xef\xbb\xbf\xe5\xa7\x93\xe5\x90\x8d,x\n1,2\n").json  # header 姓名,x
    task_runner.run_pending(runtime_of(app))
    got = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert got["state"] == "failed" and got["state_label"] == "失败"
    assert got["result"]["error"]["code"] == "validation_failed"
    assert any(e["column"] == "姓名" for e in got["result"]["errors"])


def test_starting_an_import_task_checks_scope_size_and_group_at_once(app, tokens):
    assert _start(app, tokens, b"x", who="s2_info").status_code == 404  # another school
    assert _start(app, tokens, b"x", group="NOSUCH").status_code == 404
    assert _start(app, tokens, b"").status_code == 422
    rt = runtime_of(app)
    too_big = b"x" * (rt.settings.import_max_bytes + 1)
    r = _start(app, tokens, too_big)
    assert (r.status_code, r.json["code"]) == (413, "payload_too_large")


def test_a_task_whose_process_stopped_is_failed_with_the_reason(app, tokens):
    rt = runtime_of(app)
    task = _start(app, tokens, _jbxx_csv(app, ["731"])).json
    assert task_runner.claim_next(rt, "a-process-that-died", task["id"]) == task["id"]
    with session_scope(rt.session_factory, write=True) as s:  # its lease ran out: nobody renewed it
        s.execute(update(Task).where(Task.id == task["id"]).values(lease_until=utcnow(), done=0, total=1))
    assert task_runner.claim_next(rt, "next-runner") is None  # checks for lost tasks, finds nothing queued
    got = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert got["state"] == "failed" and got["error"].startswith(
        "interrupted after 0 of 1: the process running it stopped"
    )
    # the stale runner, had it survived, could not write any more: its step is refused
    work = task_runner.TaskWork(rt, task["id"], "a-process-that-died", None, {}, None)
    try:
        with work.step():
            raise AssertionError("a lost task must not run a step")
    except task_runner.TaskLost:
        pass


def test_the_background_runner_of_serve_runs_queued_tasks(app, tokens):
    """The thread pool `tmis province serve` starts: it claims a queued task and runs it to its end."""
    import time

    runner = task_runner.TaskRunner(runtime_of(app), workers=1).start()
    try:
        task = _start(app, tokens, _jbxx_csv(app, ["741", "742"])).json
        deadline = time.monotonic() + 60
        state = task["state"]
        while state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on the task's state, polled as a page does
            state = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json["state"]
    finally:
        runner.stop()
    got = call(app, tokens, "s1_info", "GET", f"/api/v1/tasks/{task['id']}").json
    assert (got["state"], got["result"]["created"]) == ("done", 2), got
