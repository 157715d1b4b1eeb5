"""Benchmark: sync throughput against raw PostgreSQL COPY, delta cost, audit speed, memory (docs/performance.md).

Everything runs on PostgreSQL (``TMIS_BENCH_PG_URL``, default ``postgresql://root@127.0.0.1:5432/test``, used only
to create and drop this run's ``tmis_bench_*`` databases), with real processes over loopback HTTP:
``tmis national serve`` (waitress) and ``tmis province sync run``.

Scenarios (each on fresh databases):

* **full** (N records): copy_rps (COPY of the same core rows into a table shaped like the national store),
  store_rps (the same rows written straight into the national store's own tables in batches of the sync's size:
  the ceiling of sync_rps for this store, printed but not in ``--json``), sync_rps (initial sync, first batch
  to last receipt = the round's push phase), peak RSS of both processes,
  delta_large_s (a round pushing D changed records), audit_rps (``tmis audit bundle`` on the exported bundle);
* **small** (N/10 records): delta_small_s (the same D-record round against a smaller national store);
* **quarter** (N/4 records): peak RSS, for the memory-scaling ratio.

* **pages** (``scripts/bench_pages.py``): p50/p95 of the teacher lists, a file page and the review queue in a
  province of N teachers, served by ``tmis province serve`` (``--pages``: this figure alone; ``--no-pages``:
  without it).

    scripts/bench [--records N] [--delta D] [--quick] [--json FILE] [--pages | --no-pages]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench_lr  # noqa: E402 - scripts/ is not a package
import bench_pages  # noqa: E402 - the pages figure (scripts/bench_pages.py)
import synthetic  # noqa: E402

TMIS = str(Path(sys.executable).parent / "tmis")
PROVINCE = "44"
COUNTY = "440106"
SCHOOL = "2144000001"
# the fields `--json` writes (issue #7), in this order
JSON_FIELDS = (
    "records",
    "copy_rps",
    "sync_rps",
    "sync_vs_copy",
    "delta_small_s",
    "delta_large_s",
    "delta_scaling",
    "audit_rps",
    "peak_rss_mb",
    "peak_rss_mb_quarter",
    # issue 18: the peer (PostgreSQL logical replication, scripts/bench_lr.py) and the whole round
    "store_rps",
    "lr_rps",
    "lr_delta_s",
    "round_rps",
    "build_s",
    "build_cpu_us",
    "round_vs_lr",
    "push_vs_lr",
    "push_vs_store",
    "delta_vs_lr",
)


def pg_admin_url() -> str:
    url = os.environ.get("TMIS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run(args: list[str], env: dict[str, str], timeout: float = 3600) -> str:
    proc = subprocess.run([TMIS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"tmis {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssWatch(threading.Thread):
    """Polls /proc/<pid>/status for the peak resident set (VmHWM) of a running process."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.05)


class Scenario:
    def __init__(self, name: str, workdir: Path, admin: sa.Engine) -> None:
        tag = f"tmis_bench_{os.getpid()}_{secrets.token_hex(2)}_{name}"
        self.admin, self.dbs = admin, [f"{tag}_nat", f"{tag}_prov"]
        with admin.connect() as c:
            for db in self.dbs:
                c.exec_driver_sql(f'CREATE DATABASE "{db}"')
        url = sa.engine.make_url(pg_admin_url())
        self.nat_url = url.set(database=self.dbs[0]).render_as_string(hide_password=False)
        self.prov_url = url.set(database=self.dbs[1]).render_as_string(hide_password=False)
        self.port = free_port()
        self.nat_env = {
            "TMIS_DATA_DIR": str(workdir / name / "national"),
            "TMIS_DATABASE_URL": self.nat_url,
            "TMIS_BIND": f"127.0.0.1:{self.port}",
            "TMIS_LOG_ORIGIN": "bench.tmis/log/v1",
        }
        self.prov_env = {
            "TMIS_DATA_DIR": str(workdir / name / "province"),
            "TMIS_DATABASE_URL": self.prov_url,
            "TMIS_PROVINCE_CODE": PROVINCE,
            "TMIS_NATIONAL_URL": f"http://127.0.0.1:{self.port}",
            "TMIS_SYNC_SCHEDULE_MINUTES": "0",
        }
        self.server: subprocess.Popen | None = None
        self.server_watch: RssWatch | None = None

    def start(self) -> None:
        run(["national", "init"], self.nat_env)
        self.server = subprocess.Popen(
            [TMIS, "national", "serve", "--threads", "4"],
            env={**os.environ, **self.nat_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bench_pages.wait_healthy(f"http://127.0.0.1:{self.port}", self.server)
        init_province(PROVINCE, self.prov_env, self.nat_env)
        self.server_watch = RssWatch(self.server.pid)
        self.server_watch.start()

    def close(self) -> None:
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=30)
        with self.admin.connect() as c:
            for db in self.dbs:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def init_province(code: str, env: dict[str, str], nat_env: dict[str, str]) -> None:
    """``tmis province init`` (no security keys: the benchmark signs in with passwords) and enrol at the national
    node of ``nat_env``."""
    run(
        [
            "province", "init", "--province-code", code, "--admin-username", f"bench{code}", "--admin-name", "基准",
            "--admin-password", "Perf-admin-2026", "--second-factor-roles", "",  # no username in the password
        ],
        env,
    )  # fmt: skip
    token = run(["national", "enrol-token", "--province", code], nat_env).strip()
    run(["province", "sync", "enrol", "--token", token], env)


def core_rows(
    n: int, start_version: int = 1, *, province: str = PROVINCE, county: str = COUNTY, seed: int = 7
) -> list[dict]:
    """N effective teachers' core views (synthetic.py, ID numbers of ``county``), as the outbox would hold them;
    another ``seed`` gives other people (provinces that must not share an identity)."""
    from common.catalogue import load_catalogue
    from provincial_node.sync.outbox import core_view
    from sync_protocol.identifiers import make_teacher_number

    cat = load_catalogue()
    rows = []
    for i, rec in enumerate(synthetic.teachers(county, n, seed=seed)):
        fields, withheld = core_view(cat, {"JBXX": {**rec, "RYZTM": "100"}})
        rows.append(
            {
                "teacher_number": make_teacher_number(province, i + 1),
                "version": start_version + i,
                "doc": rec["SFZJH"],
                "name": rec["XM"],
                "fields": fields,
                "withheld": withheld,
            }
        )
    return rows


def seed_province(url: str, rows: list[dict], data_dir: str, province: str = PROVINCE) -> None:
    """Teachers of one school and their outbox entries (``rows``: :func:`core_rows` of ``province``), written
    directly (setup is not timed); ID numbers are encrypted with the province's data key, as the node stores
    them."""
    from common.config import DatabaseConfig
    from common.db import create_db_engine, make_session_factory
    from common.protection import DataKeys, install
    from provincial_node.accounts.models import Unit
    from provincial_node.db import Counter
    from provincial_node.sync.models import OutboxEntry
    from provincial_node.sync.outbox import entry_values
    from provincial_node.sync.sealing import seal_core_fields
    from provincial_node.teacher_files.models import Teacher
    from sync_protocol.records import CoreRecord

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
        s.execute(
            sa.insert(Teacher),
            [
                {
                    "id": i + 1,
                    "teacher_number": r["teacher_number"],
                    "unit_id": school.id,
                    "doc_type": "1",
                    "doc_number": r["doc"],
                    "doc_index": r["doc"],
                    "name": r["name"],
                    "status": "effective",
                    "ever_effective": True,
                    "data": r["fields"],
                    "draft": r["fields"],
                    "file_version": 1,
                }
                for i, r in enumerate(rows)
            ],
        )
        s.execute(
            sa.insert(OutboxEntry),
            [
                {
                    "version": r["version"],
                    "teacher_id": i + 1,
                    "teacher_number": r["teacher_number"],
                    "op": "upsert",
                    **entry_values(
                        CoreRecord(
                            r["teacher_number"],
                            province,
                            r["version"],
                            "upsert",
                            seal_core_fields(s, r["fields"], r["teacher_number"]),  # as append() stores them
                            tuple(r["withheld"]),
                        )
                    ),
                }
                for i, r in enumerate(rows)
            ],
        )
        s.execute(sa.update(Counter).where(Counter.name == "outbox").values(value=len(rows)))
        s.execute(sa.update(Counter).where(Counter.name == "teacher_number").values(value=len(rows)))
    engine.dispose()


def add_delta(url: str, rows: list[dict], d: int, data_dir: str) -> None:
    """D changed records (the first D teachers get a new 最高学历) appended to the outbox."""
    from common.config import DatabaseConfig
    from common.db import create_db_engine, make_session_factory
    from common.protection import DataKeys, install
    from provincial_node.db import Counter
    from provincial_node.sync.models import OutboxEntry
    from provincial_node.sync.outbox import entry_values
    from provincial_node.sync.sealing import seal_core_fields
    from sync_protocol.records import CoreRecord

    engine = install(create_db_engine(DatabaseConfig(url)), DataKeys.load(Path(data_dir) / "data.key"))
    with make_session_factory(engine).begin() as s:
        start = s.scalar(sa.select(Counter.value).where(Counter.name == "outbox"))
        entries = []
        for i, r in enumerate(rows[:d]):
            fields = {**r["fields"], "JBXX": {**r["fields"]["JBXX"], "ZGXLM": "11"}}
            fields = seal_core_fields(s, fields, r["teacher_number"])
            v = start + i + 1
            entries.append(
                {
                    "version": v,
                    "teacher_id": i + 1,
                    "teacher_number": r["teacher_number"],
                    "op": "upsert",
                    **entry_values(
                        CoreRecord(r["teacher_number"], PROVINCE, v, "upsert", fields, tuple(r["withheld"]))
                    ),
                }
            )
        s.execute(sa.insert(OutboxEntry), entries)
        s.execute(sa.update(Counter).where(Counter.name == "outbox").values(value=start + d))
    engine.dispose()


def sync_round(sc: Scenario) -> tuple[dict, int]:
    """Run `tmis province sync run`; return the round's timings and the province process's peak RSS (kB)."""
    proc = subprocess.Popen(
        [TMIS, "province", "sync", "run"],
        env={**os.environ, **sc.prov_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watch = RssWatch(proc.pid)
    watch.start()
    out, err = proc.communicate(timeout=7200)
    watch.stop.set()
    if proc.returncode != 0:
        raise RuntimeError(f"sync round failed:\n{out}\n{err}")
    line = next(x for x in out.splitlines() if x.startswith("round "))
    timings = json.loads(line.split("timings ", 1)[1].replace("'", '"'))
    return timings, watch.peak_kb


def copy_rps(sc: Scenario, rows: list[dict]) -> float:
    engine = sa.create_engine(sc.nat_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        c.exec_driver_sql(
            "CREATE TABLE copy_target (teacher_number varchar(13) PRIMARY KEY, province_code varchar(2), "
            "version integer, op varchar(16), fields jsonb, withheld jsonb)"
        )
        c.commit()
        raw = c.connection.driver_connection
        started = time.perf_counter()
        with raw.cursor() as cur, cur.copy("COPY copy_target FROM STDIN") as cp:
            for r in rows:
                cp.write_row(
                    (
                        r["teacher_number"],
                        PROVINCE,
                        r["version"],
                        "upsert",
                        json.dumps(r["fields"], ensure_ascii=False),
                        json.dumps(r["withheld"]),
                    )
                )
        raw.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    return len(rows) / elapsed


def store_rps(sc: Scenario, rows: list[dict], batch: int = 1000) -> float:
    """The national store's own ceiling: the same rows written straight into ``teacher_core`` and
    ``teacher_core_history`` (their real indexes and foreign key) with ``common.db.bulk_insert``, in
    transactions of the sync's batch size — what the initial sync would reach if verifying, the HTTP round
    trip, the lookups, the stored batch file and the log cost nothing. The tables are emptied afterwards."""
    import datetime as dt

    import orjson

    from common.config import DatabaseConfig
    from common.db import RawJSON, bulk_insert, create_db_engine, make_session_factory
    from national_node.intake.intake import identity_key
    from national_node.intake.models import TeacherCore, TeacherCoreHistory

    now = dt.datetime.now(dt.UTC)
    core = [
        {
            "teacher_number": r["teacher_number"],
            "province_code": PROVINCE,
            "version": r["version"],
            "op": "upsert",
            "fields": RawJSON(orjson.dumps(r["fields"])),  # the intake sends the signed bytes as they are
            "withheld": r["withheld"],
            "identity_key": identity_key(r["fields"]),
            "updated_at": now,
        }
        for r in rows
    ]
    history = [
        {
            "teacher_number": r["teacher_number"],
            "province_code": PROVINCE,
            "version": r["version"],
            "batch_hash": "0" * 64,
            "op": "upsert",
            "applied_at": now,
        }
        for r in rows
    ]
    engine = create_db_engine(DatabaseConfig(sc.nat_url))
    factory = make_session_factory(engine)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        with factory.begin() as s:
            bulk_insert(s, TeacherCore, core[i : i + batch])
            bulk_insert(s, TeacherCoreHistory, history[i : i + batch])
    elapsed = time.perf_counter() - started
    with engine.begin() as c:
        c.exec_driver_sql("TRUNCATE teacher_core, teacher_core_history")
    engine.dispose()
    return len(rows) / elapsed


def precompile() -> None:
    """Write tmis's bytecode once, as an installed package has it. From an editable install with
    PYTHONDONTWRITEBYTECODE set (as on the CI machines), every process the benchmark starts would compile the
    sources again, which is start-up time, not the work measured (about 0.3 s of the audit's 2 s here)."""
    import compileall

    for package in ("common", "sync_protocol", "national_node", "provincial_node"):
        compileall.compile_dir(ROOT / package, quiet=2)


def provinces_figure(admin: sa.Engine, workdir: Path, n: int, quick: bool) -> dict:
    """Aggregate throughput with 1, 4 and 32 provinces at once (--quick: 1 and 2 provinces, 2 000 records)."""
    from bench_provinces import bench_provinces

    total, counts = (2_000, (1, 2)) if quick else (min(n, 64_000), (1, 4, 32))
    figure = bench_provinces(admin, workdir, total, counts)
    print(f"  provinces at once ({figure['workers']} national workers, {total} records in all):")
    for k, r in figure["runs"].items():
        print(f"    {k:>2} province(s): {r['rps']} records/s ({r['seconds']} s)")
    print(f"    ratios: {figure['ratios']}", flush=True)
    return figure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=None, help="N (default 200 000; with --quick 20 000)")
    ap.add_argument("--delta", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="N = 20000 unless --records is given; small pages/provinces")
    ap.add_argument("--json", dest="json_path", help="write the results to this file")
    ap.add_argument(
        "--provinces-only", action="store_true", help="only the provinces figure (scripts/bench_provinces.py)"
    )
    ap.add_argument("--no-provinces", action="store_true", help="without the provinces figure")
    bench_pages.add_arguments(ap)
    args = ap.parse_args()
    # --- the pages figure alone (scripts/bench_pages.py) ---
    if args.pages:
        precompile()
        pages = bench_pages.figure(args)
        if args.json_path:
            Path(args.json_path).write_text(json.dumps({"pages": pages}, indent=2))
            print(f"wrote {args.json_path}")
        return 0
    # --- end of the pages figure alone ---
    n = args.records if args.records is not None else 20_000 if args.quick else 200_000
    d = min(args.delta, n // 10)
    if n < 40 or d < 1:
        ap.error("--records must be at least 40 and --delta at least 1")
    precompile()
    if args.provinces_only:  # the provinces figure alone (scripts/bench_provinces.py), on the shared server
        figure = provinces_figure(
            sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT"),
            Path(tempfile.mkdtemp(prefix="tmis-bench-")),
            n,
            args.quick,
        )
        if args.json_path:
            Path(args.json_path).write_text(json.dumps({"provinces": figure}, indent=2))
            print(f"wrote {args.json_path}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (databases, our own server) when stopped
    print(
        f"tmis benchmark: N={n}, D={d}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    local_pg = None
    server = pg_admin_url().replace("postgresql+psycopg://", "postgresql://", 1)
    level = bench_lr.wal_level(server)
    if level != "logical":  # the peer needs it: everything runs on an instance of our own, so both share a server
        local_pg = bench_lr.LocalPostgres().start()
        os.environ["TMIS_BENCH_PG_URL"] = local_pg.url
        print(
            f"the server at TMIS_BENCH_PG_URL has wal_level={level}; logical replication needs wal_level=logical: "
            f"started a PostgreSQL instance of our own ({bench_lr.PG_BIN}, 127.0.0.1:{local_pg.port}, "
            f"wal_level=logical{', run as postgres' if local_pg.as_postgres else ''}) — this run measures on it",
            flush=True,
        )
    else:
        print("the server at TMIS_BENCH_PG_URL has wal_level=logical: this run measures on it", flush=True)
    try:
        return _measure(args, n, d)
    finally:
        if local_pg is not None:
            local_pg.stop()


def _measure(args: argparse.Namespace, n: int, d: int) -> int:
    admin = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    workdir = Path(tempfile.mkdtemp(prefix="tmis-bench-"))
    results: dict = {"records": n, "delta": d}
    rows = core_rows(n)
    scenarios = []
    try:
        # the peer: logical replication of the same rows into the national schema, history by trigger
        schema_dir = workdir / "lr-national"
        results.update(
            bench_lr.measure(
                pg_admin_url().replace("postgresql+psycopg://", "postgresql://", 1),
                rows,
                d,
                PROVINCE,
                lambda url: run(
                    ["national", "db", "upgrade"], {"TMIS_DATA_DIR": str(schema_dir), "TMIS_DATABASE_URL": url}
                ),
            )
        )
        # full: COPY reference, initial sync, memory, large delta, audit
        full = Scenario("full", workdir, admin)
        scenarios.append(full)
        full.start()
        results["copy_rps"] = round(copy_rps(full, rows), 1)
        results["store_rps"] = round(store_rps(full, rows), 1)
        seed_province(full.prov_url, rows, full.prov_env["TMIS_DATA_DIR"])
        timings, prov_kb = sync_round(full)
        results["sync_rps"] = round(n / timings["push"], 1)
        results["build_s"] = timings["build"]
        results["build_cpu_us"] = round(timings["build_cpu"] / n * 1e6, 2)
        # the whole round: outbox -> last receipt (build, the recovery check, push)
        results["round_rps"] = round(n / (timings["build"] + timings.get("recovery", 0) + timings["push"]), 1)
        results["peak_rss_mb_province"] = round(prov_kb / 1024, 1)
        results["peak_rss_mb_national"] = round(full.server_watch.peak_kb / 1024, 1)
        results["peak_rss_mb"] = max(results["peak_rss_mb_province"], results["peak_rss_mb_national"])
        add_delta(full.prov_url, rows, d, full.prov_env["TMIS_DATA_DIR"])
        t, _ = sync_round(full)
        results["delta_large_s"] = round(t["build"] + t["push"], 3)
        bundle = workdir / "bundle"
        run(["national", "export", "-o", str(bundle)], full.nat_env)
        started = time.perf_counter()
        run(["audit", "bundle", str(bundle)], {})
        results["audit_rps"] = round((n + d) / (time.perf_counter() - started), 1)
        full.close()
        # small: the same delta against a national store holding N/10
        small = Scenario("small", workdir, admin)
        scenarios.append(small)
        small.start()
        seed_province(small.prov_url, rows[: n // 10], small.prov_env["TMIS_DATA_DIR"])
        sync_round(small)
        add_delta(small.prov_url, rows[: n // 10], d, small.prov_env["TMIS_DATA_DIR"])
        t, _ = sync_round(small)
        results["delta_small_s"] = round(t["build"] + t["push"], 3)
        small.close()
        # quarter: memory at N/4
        quarter = Scenario("quarter", workdir, admin)
        scenarios.append(quarter)
        quarter.start()
        seed_province(quarter.prov_url, rows[: n // 4], quarter.prov_env["TMIS_DATA_DIR"])
        _t, q_kb = sync_round(quarter)
        results["peak_rss_mb_quarter"] = round(max(q_kb, quarter.server_watch.peak_kb) / 1024, 1)
        quarter.close()
        if not args.no_provinces:
            results["provinces"] = provinces_figure(admin, workdir, n, args.quick)
    finally:
        for sc in scenarios:
            try:
                sc.close()
            except Exception as e:  # report and go on dropping the other databases
                print(f"cleanup of {sc.dbs}: {e}", file=sys.stderr)
        admin.dispose()
    results["sync_vs_copy"] = round(results["sync_rps"] / results["copy_rps"], 4)
    results["store_vs_copy"] = round(results["store_rps"] / results["copy_rps"], 4)
    results["sync_vs_store"] = round(results["sync_rps"] / results["store_rps"], 4)
    results["delta_scaling"] = round(results["delta_large_s"] / results["delta_small_s"], 3)
    results["round_vs_lr"] = round(results["round_rps"] / results["lr_rps"], 4)
    results["push_vs_lr"] = round(results["sync_rps"] / results["lr_rps"], 4)
    results["push_vs_store"] = round(results["sync_rps"] / results["store_rps"], 4)
    results["delta_vs_lr"] = round(results["delta_large_s"] / results["lr_delta_s"], 3)
    targets = {
        "sync_vs_copy": (">=", 0.5),
        "delta_scaling": ("<=", 1.3),
        "audit_rps": (">=", 100_000),
        "round_vs_lr": (">=", 1.0),
        "push_vs_store": (">=", 0.6),
        "build_cpu_us": ("<=", 20),
        "delta_vs_lr": ("<=", 1.0),
    }
    out = io.StringIO()
    extra = ("store_vs_copy", "sync_vs_store", "lr_delta_lag_s", "peak_rss_mb_province", "peak_rss_mb_national")
    for key in (*JSON_FIELDS, *extra):
        target = targets.get(key)
        mark = ""
        if target:
            ok = results[key] >= target[1] if target[0] == ">=" else results[key] <= target[1]
            mark = f"   target {target[0]} {target[1]}: {'met' if ok else 'NOT met'}"
        out.write(f"  {key:<22} {results[key]}{mark}\n")
    rss_ok = results["peak_rss_mb"] <= 1.5 * results["peak_rss_mb_quarter"]
    out.write(
        f"  {'rss N / rss N/4':<22} {round(results['peak_rss_mb'] / results['peak_rss_mb_quarter'], 3)}"
        f"   target <= 1.5: {'met' if rss_ok else 'NOT met'}\n"
    )
    print(out.getvalue(), end="")
    figures = {k: results[k] for k in JSON_FIELDS}
    if not args.no_pages:  # the pages figure (scripts/bench_pages.py)
        figures["pages"] = bench_pages.figure(args)
    if "provinces" in results:
        figures["provinces"] = results["provinces"]
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
