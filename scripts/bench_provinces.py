"""The ``provinces`` figure of ``scripts/bench``: aggregate sync throughput with 1, 4 and 32 provinces pushing at once
(issue 17 item 5).

For each K the same total of N records is split over K provinces (N/K each) on fresh PostgreSQL databases: one
national node served by ``tmis national serve --workers W`` (W = the machine's cores, at least 2) and K provincial
nodes initialised and enrolled through the CLI, their teachers and outbox entries written directly (setup, not
timed). Then K ``tmis province sync run`` processes start together; the figure is N divided by the span from the
first round's start to the last round's end, as the rounds recorded them (interpreter start-up excluded). The
national store is checked to hold all N teacher numbers afterwards.

    scripts/bench --provinces-only [--records N]   (or as part of the full run; --quick uses small N)

``TMIS_BENCH_DEBUG=1`` keeps the national node's log (``<workdir>/national<K>.log``: every request with its
duration) and prints each round's phases and its start and end offsets.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench import TMIS, free_port, pg_admin_url, run

CODES = (
    "44", "11", "31", "32", "12", "13", "14", "15", "21", "22", "23", "33", "34", "35", "36", "37",
    "41", "42", "43", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "66",
)  # fmt: skip
COUNTS = (1, 4, 32)
DEBUG = bool(os.environ.get("TMIS_BENCH_DEBUG"))


def _url(admin: sa.Engine, db: str) -> str:
    return sa.engine.make_url(pg_admin_url()).set(database=db).render_as_string(hide_password=False)


def _seed(url: str, data_dir: str, province: str, n: int, first: int) -> None:
    """N effective teachers of one school and their outbox entries, written straight into the province's tables
    (ID numbers encrypted with its data key, as the node stores them)."""
    import synthetic  # scripts/ is on the path (bench.py puts it there)

    from common.catalogue import load_catalogue
    from common.config import DatabaseConfig
    from common.db import create_db_engine, make_session_factory
    from common.protection import DataKeys, install
    from provincial_node.accounts.models import Unit
    from provincial_node.db import Counter
    from provincial_node.sync.models import OutboxEntry
    from provincial_node.sync.outbox import core_view, entry_values
    from provincial_node.sync.sealing import seal_core_fields
    from provincial_node.teacher_files.models import Teacher
    from sync_protocol.identifiers import make_teacher_number
    from sync_protocol.records import CoreRecord

    cat = load_catalogue()
    county = "440106" if province == "44" else "110105"  # the ID numbers' region: any valid one
    engine = install(create_db_engine(DatabaseConfig(url)), DataKeys.load(Path(data_dir) / "data.key"))
    with make_session_factory(engine).begin() as s:
        top = s.scalar(sa.select(Unit).where(Unit.code == f"{province}0000"))
        school = Unit(
            code=f"21{province}000001",
            name="基准学校",
            level="school",
            parent_id=top.id,
            path="",
            school_type="211",
            supervisor_id=top.id,
        )
        s.add(school)
        s.flush()
        school.path = f"{top.path}{school.id}/"
        teachers, entries = [], []
        for i, rec in enumerate(synthetic.teachers(county, n, seed=first)):
            fields, withheld = core_view(cat, {"JBXX": {**rec, "RYZTM": "100"}})
            number = make_teacher_number(province, i + 1)
            teachers.append(
                {
                    "id": i + 1,
                    "teacher_number": number,
                    "unit_id": school.id,
                    "doc_type": "1",
                    "doc_number": rec["SFZJH"],
                    "doc_index": rec["SFZJH"],
                    "name": rec["XM"],
                    "status": "effective",
                    "ever_effective": True,
                    "data": fields,
                    "draft": fields,
                    "file_version": 1,
                }
            )
            sealed = seal_core_fields(s, fields, number)  # as append() stores them
            record = CoreRecord(number, province, i + 1, "upsert", sealed, tuple(withheld))
            entries.append(
                {
                    "version": i + 1,
                    "teacher_id": i + 1,
                    "teacher_number": number,
                    "op": "upsert",
                    **entry_values(record),
                }
            )
        s.execute(sa.insert(Teacher), teachers)
        s.execute(sa.insert(OutboxEntry), entries)
        s.execute(sa.update(Counter).where(Counter.name == "outbox").values(value=n))
        s.execute(sa.update(Counter).where(Counter.name == "teacher_number").values(value=n))
    engine.dispose()


def _round_span(url: str) -> tuple[dt.datetime, dt.datetime, str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT started_at, finished_at, status, timings FROM sync_round ORDER BY id DESC LIMIT 1")
        ).one()
    if DEBUG:
        print(row[3])
    engine.dispose()
    return row[0], row[1], row[2]


def one_run(admin: sa.Engine, workdir: Path, k: int, total: int, workers: int) -> dict[str, Any]:
    tag = f"tmis_bench_{os.getpid()}_{secrets.token_hex(2)}_p{k}"
    dbs = [f"{tag}_nat", *(f"{tag}_{code}" for code in CODES[:k])]
    with admin.connect() as c:
        for db in dbs:
            c.exec_driver_sql(f'CREATE DATABASE "{db}"')
    port = free_port()
    nat_env = {
        "TMIS_DATA_DIR": str(workdir / f"p{k}" / "national"),
        "TMIS_DATABASE_URL": _url(admin, dbs[0]),
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_LOG_ORIGIN": "bench.tmis/log/v1",
    }
    server = None
    try:
        run(["national", "init"], nat_env)
        server = subprocess.Popen(
            [TMIS, "national", "serve", "--workers", str(workers), "--threads", "4"],
            env={**os.environ, **nat_env},
            stdout=(workdir / f"national{k}.log").open("w") if DEBUG else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        import requests

        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        envs = []
        per = total // k
        for i, code in enumerate(CODES[:k]):
            env = {
                "TMIS_DATA_DIR": str(workdir / f"p{k}" / code),
                "TMIS_DATABASE_URL": _url(admin, dbs[i + 1]),
                "TMIS_PROVINCE_CODE": code,
                "TMIS_NATIONAL_URL": f"http://127.0.0.1:{port}",
                "TMIS_SYNC_SCHEDULE_MINUTES": "0",
            }
            run(
                [
                    "province", "init", "--province-code", code, "--admin-username", f"bench{code}",
                    "--admin-name", "基准", "--admin-password", "Perf-admin-2026", "--second-factor-roles", "",
                ],
                env,
            )  # fmt: skip
            token = run(["national", "enrol-token", "--province", code], nat_env).strip()
            run(["province", "sync", "enrol", "--token", token], env)
            _seed(env["TMIS_DATABASE_URL"], env["TMIS_DATA_DIR"], code, per, first=i + 1)
            envs.append(env)
        procs = [
            subprocess.Popen(
                [TMIS, "province", "sync", "run"],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for env in envs
        ]
        for p, env in zip(procs, envs, strict=True):
            out, err = p.communicate(timeout=7200)
            if p.returncode != 0:
                raise RuntimeError(f"sync round of {env['TMIS_PROVINCE_CODE']} failed:\n{out}\n{err}")
        spans = [_round_span(env["TMIS_DATABASE_URL"]) for env in envs]
        if any(status != "ok" for _s, _e, status in spans):
            raise RuntimeError(f"a round did not end ok: {[s for *_x, s in spans]}")
        seconds = (max(e for _s, e, _x in spans) - min(s for s, _e, _x in spans)).total_seconds()
        first = min(s for s, _e, _x in spans)
        if DEBUG:
            print(
                [(round((s - first).total_seconds(), 2), round((e - first).total_seconds(), 2)) for s, e, _x in spans]
            )
        nat = sa.create_engine(nat_env["TMIS_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
        with nat.connect() as c:
            held = c.execute(sa.text("SELECT count(*) FROM teacher_core")).scalar()
        nat.dispose()
        if held != per * k:
            raise RuntimeError(f"the national store holds {held} teachers, expected {per * k}")
        return {"provinces": k, "records": per * k, "seconds": round(seconds, 3), "rps": round(per * k / seconds, 1)}
    finally:
        if server and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        with admin.connect() as c:
            for db in dbs:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def bench_provinces(admin: sa.Engine, workdir: Path, total: int, counts: tuple[int, ...] = COUNTS) -> dict[str, Any]:
    """The figure: per K, records/s aggregated over K provinces pushing at once; ratios against one province."""
    workers = max(2, os.cpu_count() or 1)
    runs = {str(k): one_run(admin, workdir, k, total - total % k, workers) for k in counts}
    one = runs[str(counts[0])]["rps"]
    return {
        "workers": workers,
        "runs": runs,
        "ratios": {f"{k}_vs_{counts[0]}": round(runs[str(k)]["rps"] / one, 3) for k in counts[1:]},
    }
