"""SQLite under load, as real processes (issue 17 item 6; slow): a `tmis province serve` process imports a large
file as a background task while another school's clerk edits a file over HTTP — on SQLite and PostgreSQL every
edit is answered 200 (none 500, none failed), some of them while the import runs, and the import completes."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.db import create_db_engine, make_session_factory, session_scope
from provincial_node.accounts import accounts, units
from provincial_node.config import config_from_env
from provincial_node.teacher_files import sheets
from tests.conftest import run_tmis
from tests.factories import GOOD_RECORDS, resident_id
from tests.helpers import ctx
from tests.integration.conftest import _port
from tests.provincial.conftest import UNITS_CSV

pytestmark = pytest.mark.slow
TMIS = str(Path(sys.executable).parent / "tmis")
PASSWORD, NEW = "Init-pass-2026", "Changed-pass-2026"
ROWS = 1500
WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")


def _jbxx(catalogue) -> bytes:
    group = catalogue.group("JBXX")
    codes = [f.code for f in sheets.columns(group)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(sheets.header_row(group))
    for i in range(ROWS):
        birth = f"1980{(i % 12) + 1:02d}{(i % 28) + 1:02d}"
        rec = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
        rec.update(
            SFZJH=resident_id("440106", birth, f"{i % 1000:03d}"),
            CSRQ=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            XBM="1" if (i % 1000) % 2 else "2",
            XM=f"导入{i}",
            ZZMMM="01",
        )
        w.writerow([rec.get(c, "") for c in codes])
    return buf.getvalue().encode()


def test_a_school_edits_while_another_imports_across_processes(tmp_path, database_url_factory):
    port = _port()
    env = {
        "TMIS_DATA_DIR": str(tmp_path / "p44"),
        "TMIS_DATABASE_URL": database_url_factory("load"),
        "TMIS_PROVINCE_CODE": "44",
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_SYNC_SCHEDULE_MINUTES": "0",
        "TMIS_IMPORT_CHUNK_ROWS": "50",
        "TMIS_TASK_WORKERS": "2",
    }
    run_tmis(
        "province", "init", "--province-code", "44", "--admin-username", "admin44", "--admin-name", "管理员",
        "--admin-password", PASSWORD, "--second-factor-roles", "", env=env,
    )  # fmt: skip
    config = config_from_env(env)
    engine = create_db_engine(config.database)
    with session_scope(make_session_factory(engine)) as s:
        units.import_units_csv(ctx(s, None), "\n".join(UNITS_CSV.splitlines()[0:1] + UNITS_CSV.splitlines()[2:]) + "\n")
        for name, code in (("s1_info", "2144000001"), ("s2_info", "2144000002")):
            unit = units.get_unit_by_code(s, code)
            accounts.create_account(
                ctx(s, None), username=name, real_name=name, unit=unit, role="infoadmin", password=PASSWORD
            )
        ids = {code: units.get_unit_by_code(s, code).id for code in ("2144000001", "2144000002")}
    engine.dispose()
    log = (tmp_path / "serve.log").open("ab")
    server = subprocess.Popen(
        [TMIS, "province", "serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        http = {}
        for name in ("s1_info", "s2_info"):
            token = requests.post(
                f"{base}/auth/login", json={"username": name, "password": PASSWORD}, timeout=30
            ).json()["token"]
            h = {"Authorization": f"Bearer {token}"}
            requests.post(
                f"{base}/auth/password", headers=h, json={"old_password": PASSWORD, "new_password": NEW}, timeout=30
            )
            http[name] = h
        basic = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
        r = requests.post(
            f"{base}/teachers", headers=http["s2_info"], timeout=30,
            json={"school_id": ids["2144000002"], "basic": {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")}},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        teacher = r.json()["id"]
        from common.catalogue import load_catalogue

        r = requests.post(
            f"{base}/imports/JBXX/tasks?school_id={ids['2144000001']}&format=csv",
            headers=http["s1_info"], data=_jbxx(load_catalogue()), timeout=60,
        )  # fmt: skip
        assert r.status_code == 202, r.text
        task_url = f"{base}/tasks/{r.json()['id']}"
        statuses, during, n = [], 0, 0
        state = "queued"
        while state in ("queued", "running"):
            n += 1
            before = requests.get(task_url, headers=http["s1_info"], timeout=60).json()
            body = {**GOOD_RECORDS["LXFS"], "TXDZ": f"海珠区第{n}号"}
            r = requests.put(f"{base}/teachers/{teacher}/groups/LXFS", headers=http["s2_info"], json=body, timeout=60)
            statuses.append(r.status_code)
            after = requests.get(task_url, headers=http["s1_info"], timeout=60).json()
            state = after["state"]
            if (
                r.status_code == 200
                and before["state"] == after["state"] == "running"
                and after["done"] > before["done"]
            ):
                during += 1  # the edit went through while import chunks committed around it
        assert state == "done", after
        assert set(statuses) == {200}, statuses
        assert during >= 1, (n, statuses)
        assert (after["result"]["created"], after["result"]["failed"]) == (ROWS, 0), after["result"]["errors"][:3]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
