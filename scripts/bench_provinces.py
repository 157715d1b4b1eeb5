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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench import TMIS, core_rows, free_port, init_province, pg_admin_url, run, seed_province
from bench_pages import wait_healthy

CODES = (
    "44", "11", "31", "32", "12", "13", "14", "15", "21", "22", "23", "33", "34", "35", "36", "37",
    "41", "42", "43", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "66",
)  # fmt: skip
COUNTS = (1, 4, 32)
DEBUG = bool(os.environ.get("TMIS_BENCH_DEBUG"))


def _url(admin: sa.Engine, db: str) -> str:
    return sa.engine.make_url(pg_admin_url()).set(database=db).render_as_string(hide_password=False)


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
        wait_healthy(f"http://127.0.0.1:{port}", server)
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
            init_province(code, env, nat_env)
            county = "440106" if code == "44" else "110105"  # the ID numbers' region: any valid one
            rows = core_rows(per, province=code, county=county, seed=i + 1)  # other people in each province
            seed_province(env["TMIS_DATABASE_URL"], rows, env["TMIS_DATA_DIR"], code)
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
