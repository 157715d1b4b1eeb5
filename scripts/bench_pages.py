"""The ``pages`` figure of ``scripts/bench`` (docs/performance.md, "Pages at N = 200 000"): how fast the pages
that grow with a province render, as their users open them.

One province on PostgreSQL (its own ``tmis_bench_*_pages`` database, created from ``TMIS_BENCH_PG_URL`` and
dropped after) is filled with N teachers in the shape of a real one (REFERENCE.md §4: about 44 teachers per
school; here kindergartens of 8–25, primary schools of 20–80 and secondary schools of 50–150 teachers, in
counties of uneven size — the largest holds about 7 % of the province, a city-district county of some 14 000
teachers at N = 200 000). Most files are effective; a share is a draft, returned, waiting for the school's
review or, with one new 年度考核 year, waiting for the county's (the collection season). The rows are written
straight through the node's own models (encrypted ID numbers and their blind index, as the node stores them;
setup is not timed).

The real node then serves: ``tmis province serve`` (waitress) on a free loopback port; each user signs in
through the login page (CSRF token, session cookie) and ``requests`` opens, after a warm-up, each page
``--pages-requests`` times:

* ``county_list``: 教师信息 of the largest county, as its reviewer (区县信息管理员), cycling through its first
  keyset pages;
* ``school_list``: 教师信息 of the largest school of that county, as its entry clerk (学校信息管理员·录入);
* ``file``: 档案 pages of that school's teachers, as the clerk (an audited read each);
* ``review_queue``: 审核 of the county, as its reviewer, cycling through the queue's first pages.

Each page's p50 and p95 (ms, the whole HTTP request) are reported against the target: p95 under 300 ms.

    scripts/bench --pages [--pages-records N] [--pages-requests R] [--quick] [--json FILE]
"""

from __future__ import annotations

import html
import math
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import synthetic  # noqa: E402 - scripts/ is not a package

TMIS = str(Path(sys.executable).parent / "tmis")
PROVINCE = "44"
PASSWORD = "Bench-pages-2026"  # noqa: S105 - a throw-away benchmark database
TARGET_P95_MS = 300.0
PAGES = ("county_list", "school_list", "file", "review_queue")
QUICK_RECORDS = 5000
# the share of files in each state (the rest effective): the annual update season
STATES = (("draft", 0.02), ("rejected", 0.01), ("submitted", 0.02), ("school_approved", 0.05))
# (办学类型, smallest, largest school, share of schools)
SCHOOL_KINDS = (("111", 8, 25, 0.30), ("211", 20, 80, 0.45), ("311", 50, 150, 0.15), ("342", 50, 150, 0.10))


def add_arguments(ap: Any) -> None:
    """The pages figure's options on ``scripts/bench``'s parser."""
    ap.add_argument("--pages", action="store_true", help="run only the pages figure")
    ap.add_argument("--no-pages", action="store_true", help="skip the pages figure")
    ap.add_argument(
        "--pages-records", type=int, help=f"teachers in the province (default --records; --quick {QUICK_RECORDS})"
    )
    ap.add_argument("--pages-requests", type=int, default=50, help="timed requests per page (after a warm-up)")


def pages_records(args: Any) -> int:
    if args.pages_records:
        return args.pages_records
    return QUICK_RECORDS if args.quick else args.records


@dataclass
class Province:
    """What the benchmark needs to know of the filled province."""

    teachers: int
    schools: int
    counties: int
    county_code: str  # the largest county
    county_teachers: int
    school_code: str  # the largest school of that county
    school_teachers: int
    school_file_ids: list[int]
    county_waiting: int  # files waiting for the county's review


def _shape(n: int, rng: random.Random) -> list[tuple[str, list[tuple[str, int]]]]:
    """Counties (code, [(办学类型, teachers) per school]) holding n teachers in all."""
    n_cities = max(1, min(10, n // 25_000))
    n_counties = max(2, min(n_cities * 5, n // 2000))
    counties = [f"44{c + 1:02d}{k + 3:02d}" for c in range(n_cities) for k in range(math.ceil(n_counties / n_cities))]
    counties = counties[:n_counties]
    weights = [1 / math.sqrt(i + 2) for i in range(n_counties)]  # uneven: city districts are the big ones
    schools: dict[str, list[tuple[str, int]]] = {c: [] for c in counties}
    kinds = [k[:3] for k in SCHOOL_KINDS]
    left = n
    while left > 0:
        kind, low, high = rng.choices(kinds, weights=[k[3] for k in SCHOOL_KINDS])[0]
        size = min(left, rng.randint(low, high))
        schools[rng.choices(counties, weights=weights)[0]].append((kind, size))
        left -= size
    return [(c, s) for c, s in schools.items() if s]


def _document(rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A whole effective file: 基本信息 and the groups a school fills for every teacher."""
    gwpr, zyjs = synthetic.posts(rng)
    first_year = int(rec["CJGZNY"][:4])
    return {
        "JBXX": {**rec, "RYZTM": "100", "XRGWLBM": gwpr[0]["GWLBM"]},
        "XXJL": [{"HDXLM": rec["ZGXLM"], "XWCCM": rec["ZGXWCCM"], "XXFSM": "1", "RXNY": f"{first_year - 4}-09"}],
        "GZJL": [{"RZDWMC": "本校", "RZKSNY": rec["JBXNY"]}],
        "GWPR": gwpr,
        "ZYJSZWPR": zyjs,
        "NDKH": [{"KHND": str(y), "KHJGM": rng.choice("1222")} for y in range(max(first_year, 2020), 2025)],
    }


def fill(url: str, data_dir: Path, n: int, seed: int = 2026) -> Province:
    """Units, two accounts and n teachers, written through the node's models (setup, not timed)."""
    from common.config import DatabaseConfig
    from common.db import create_db_engine, make_session_factory, utcnow
    from common.protection import DataKeys, install
    from provincial_node.accounts.models import Account, Unit
    from provincial_node.accounts.passwords import hash_password
    from provincial_node.db import Counter
    from provincial_node.teacher_files.models import Teacher
    from sync_protocol.identifiers import make_teacher_number

    rng = random.Random(seed)  # synthetic data, not security
    shape = _shape(n, rng)
    engine = install(create_db_engine(DatabaseConfig(url)), DataKeys.load(data_dir / "data.key"))
    factory = make_session_factory(engine)
    number = 0
    county_units: dict[str, Unit] = {}
    school_units: list[tuple[Unit, int, str]] = []  # (school, teachers, county code)
    with factory.begin() as s:
        province = s.scalar(sa.select(Unit).where(Unit.code == f"{PROVINCE}0000"))
        cities: dict[str, Unit] = {}
        for county_code, schools in shape:
            city_code = county_code[:4] + "00"
            if city_code not in cities:
                city = Unit(code=city_code, name=f"{city_code}市教育局", level="city", parent_id=province.id, path="")
                city.division_code = city_code
                s.add(city)
                s.flush()
                city.path = f"{province.path}{city.id}/"
                cities[city_code] = city
            city = cities[city_code]
            county = Unit(code=county_code, name=f"{county_code}区教育局", level="county", parent_id=city.id, path="")
            county.division_code = county_code
            s.add(county)
            s.flush()
            county.path = f"{city.path}{county.id}/"
            county_units[county_code] = county
            for kind, size in schools:
                number += 1
                school = Unit(
                    code=f"{kind[:2]}{PROVINCE}{number:06d}",
                    name=f"{county_code}区第{number}学校",
                    level="school",
                    parent_id=county.id,
                    path="",
                    school_type=kind,
                    urban_rural_type="111",
                    supervisor_id=county.id,
                )
                s.add(school)
                school_units.append((school, size, county_code))
            s.flush()
            for school, _size, code in school_units:
                if code == county_code:
                    school.path = f"{county.path}{school.id}/"
        big = max(shape, key=lambda c: sum(size for _k, size in c[1]))[0]
        in_county = [x for x in school_units if x[2] == big]
        bench_school = max((x for x in in_county if x[0].school_type != "111"), key=lambda x: x[1])[0]
        now = utcnow()
        for username, unit in (("bench_county", county_units[big]), ("bench_school", bench_school)):
            s.add(
                Account(
                    username=username,
                    real_name=f"基准{unit.name}",
                    unit_id=unit.id,
                    role="infoadmin",
                    password_hash=hash_password(PASSWORD),
                    must_change_password=False,
                    password_changed_at=now,
                    phone="13800138000",
                )
            )
        bench_school_id, bench_school_code = bench_school.id, bench_school.code
    # teachers: one county at a time (the synthetic ID numbers carry its division code); ids and teacher numbers
    # in registration order across the province, as schools register teachers in parallel
    total = sum(size for _u, size, _c in school_units)
    order = list(range(1, total + 1))
    rng.shuffle(order)
    serial = 0
    school_ids: list[int] = []
    waiting = county_total = 0
    states = [s for s, _share in STATES] + ["effective"]
    shares = [share for _s, share in STATES] + [1 - sum(share for _s, share in STATES)]
    for county_code, _schools in shape:
        mine = [(u.id, size) for u, size, c in school_units if c == county_code]
        people = iter(synthetic.teachers(county_code, sum(size for _u, size in mine), seed=seed, start=serial))
        rows = []
        for unit_id, size in mine:
            for _ in range(size):
                tid = order[serial]
                serial += 1
                rec = next(people)
                doc = _document(rec, rng)
                state = rng.choices(states, weights=shares)[0]
                row = {
                    "id": tid,
                    "teacher_number": make_teacher_number(PROVINCE, tid),
                    "unit_id": unit_id,
                    "doc_type": "1",
                    "doc_number": rec["SFZJH"],
                    "doc_index": rec["SFZJH"],
                    "name": rec["XM"],
                    "status": state,
                    "ever_effective": True,
                    "data": doc,
                    "draft": doc,
                    "file_version": 1,
                    "rejection_reason": None,
                    "person_status": "100",
                    "post_category": doc["JBXX"]["XRGWLBM"],
                    "birth_date": rec["CSRQ"],
                }
                if state in ("draft", "rejected"):  # a new teacher's file, never effective yet
                    row.update(data={}, ever_effective=False, file_version=0, person_status=None, post_category=None)
                    row["birth_date"] = None
                    if state == "rejected":
                        row["rejection_reason"] = "请核对参加工作年月"
                else:  # effective, or this year's 年度考核 added and under review
                    if state != "effective":
                        row["draft"] = {**doc, "NDKH": [*doc["NDKH"], {"KHND": "2025", "KHJGM": "2"}]}
                if county_code == big:
                    county_total += 1
                    waiting += state == "school_approved"
                if unit_id == bench_school_id:
                    school_ids.append(tid)
                rows.append(row)
        with factory.begin() as s:
            for i in range(0, len(rows), 2000):
                s.execute(sa.insert(Teacher), rows[i : i + 2000])
    with factory.begin() as s:
        s.execute(sa.update(Counter).where(Counter.name == "teacher_number").values(value=serial))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves a table that has settled
    engine.dispose()
    return Province(
        teachers=serial,
        schools=len(school_units),
        counties=len(shape),
        county_code=big,
        county_teachers=county_total,
        school_code=bench_school_code,
        school_teachers=len(school_ids),
        school_file_ids=sorted(school_ids),
        county_waiting=waiting,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([TMIS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"tmis {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NEXT = re.compile(r'<a class="btn btn-sm btn-outline-primary" href="([^"]+)">下一页</a>')


def sign_in(base: str, username: str) -> Any:
    """A browser session of ``username``: the login page's CSRF token, the form posted, the session cookie."""
    import requests

    web = requests.Session()
    page = web.get(base + "/login", timeout=30)
    token = _CSRF.search(page.text)
    if page.status_code != 200 or token is None:
        raise RuntimeError(f"login page: {page.status_code}")
    r = web.post(
        base + "/login",
        data={"csrf_token": html.unescape(token.group(1)), "username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    if r.status_code != 302 or "/account/password" in r.headers.get("Location", ""):
        raise RuntimeError(f"login of {username}: {r.status_code} {r.text[:300]}")
    return web


def get(web: Any, url: str, marker: str) -> tuple[float, str]:
    """One page: the whole request's time in ms; a redirect (to the login page) or an error is a failure."""
    started = time.perf_counter()
    r = web.get(url, allow_redirects=False, timeout=60)
    body = r.text
    elapsed = (time.perf_counter() - started) * 1000
    if r.status_code != 200 or marker not in body:
        raise RuntimeError(f"GET {url}: {r.status_code} {body[:300]}")
    return elapsed, body


def keyset_urls(web: Any, base: str, path: str, marker: str, pages: int) -> list[str]:
    """The first ``pages`` pages of a list, following its 下一页 links."""
    urls = [base + path]
    while len(urls) < pages:
        _ms, body = get(web, urls[-1], marker)
        link = _NEXT.search(body)
        if link is None:
            break
        urls.append(base + html.unescape(link.group(1)))
    return urls


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(province: Province, base: str, requests_per_page: int) -> dict[str, dict[str, Any]]:
    county = sign_in(base, "bench_county")
    school = sign_in(base, "bench_school")
    plans = {
        "county_list": (county, keyset_urls(county, base, "/teachers", "data-teacher-table", 10), "data-total"),
        "school_list": (school, keyset_urls(school, base, "/teachers", "data-teacher-table", 10), "data-total"),
        "file": (school, [f"{base}/teachers/{i}" for i in province.school_file_ids], "基本信息"),
        "review_queue": (county, keyset_urls(county, base, "/review", "data-queue-total", 10), "data-queue-total"),
    }
    out = {}
    for name, (web, urls, marker) in plans.items():
        for url in urls[:5]:  # warm-up: the server's first requests compile templates and fill caches
            get(web, url, marker)
        times = [get(web, urls[i % len(urls)], marker)[0] for i in range(requests_per_page)]
        p95 = percentile(times, 95)
        out[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(max(times), 1),
            "urls": len(urls),
            "met": p95 < TARGET_P95_MS,
        }
    return out


def figure(args: Any) -> dict[str, Any]:
    """Fill, serve, measure, clean up; prints the figure's lines and returns the ``pages`` JSON object."""
    n = pages_records(args)
    if n < 1000:  # enough for two counties with primary or secondary schools in the largest
        raise SystemExit("--pages-records must be at least 1000")
    admin_url = os.environ.get("TMIS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test")
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    db = f"tmis_bench_{os.getpid()}_{secrets.token_hex(2)}_pages"
    workdir = Path(tempfile.mkdtemp(prefix="tmis-bench-pages-"))
    url = sa.engine.make_url(admin_url).set(database=db).render_as_string(hide_password=False)
    port = free_port()
    env = {
        "TMIS_DATA_DIR": str(workdir / "province"),
        "TMIS_DATABASE_URL": url,
        "TMIS_PROVINCE_CODE": PROVINCE,
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_SYNC_SCHEDULE_MINUTES": "0",
        "TMIS_TASK_WORKERS": "0",
        "TMIS_LOG_LEVEL": "WARNING",
    }
    server = None
    log = open(workdir / "serve.log", "w")  # noqa: SIM115 - kept open for the server's lifetime
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{db}"')
    try:
        run(
            [
                "province",
                "init",
                "--province-code",
                PROVINCE,
                "--admin-username",
                "bench",
                "--admin-name",
                "基准",
                "--admin-password",
                "Perf-admin-2026",
                "--second-factor-roles",
                "",
            ],
            env,
        )
        started = time.perf_counter()
        province = fill(url, workdir / "province", n)
        fill_s = time.perf_counter() - started
        print(
            f"pages: {province.teachers} teachers, {province.schools} schools, {province.counties} counties filled in "
            f"{fill_s:.1f} s; county {province.county_code}: {province.county_teachers} teachers, "
            f"{province.county_waiting} waiting for its review; school {province.school_code}: "
            f"{province.school_teachers} teachers",
            flush=True,
        )
        server = subprocess.Popen([TMIS, "province", "serve"], env={**os.environ, **env}, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server)
        load_before = os.getloadavg()[0]
        results = measure(province, base, args.pages_requests)
        load = max(load_before, os.getloadavg()[0])  # a shared machine: other work slows the pages too
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        log.close()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.dispose()
    figure_json: dict[str, Any] = {
        "teachers": province.teachers,
        "schools": province.schools,
        "counties": province.counties,
        "county_teachers": province.county_teachers,
        "school_teachers": province.school_teachers,
        "review_queue_files": province.county_waiting,
        "requests_per_page": args.pages_requests,
        "target_p95_ms": TARGET_P95_MS,
        "load_avg_1m": round(load, 2),
        **{name: {k: v for k, v in r.items() if k != "urls"} for name, r in results.items()},
    }
    print(f"  pages: 1-minute load average up to {load:.2f} on {os.cpu_count()} CPUs while measuring")
    for name in PAGES:
        r = results[name]
        print(
            f"  pages.{name:<16} p50 {r['p50_ms']:>7.1f} ms  p95 {r['p95_ms']:>7.1f} ms  max {r['max_ms']:>7.1f} ms"
            f"  ({r['urls']} URLs)   target p95 < {TARGET_P95_MS:.0f} ms: {'met' if r['met'] else 'NOT met'}"
        )
    return figure_json


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Until the node at ``base`` answers ``/health``; raises when it exits or does not answer in time (also used
    by bench.py and bench_provinces.py)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server at {base} exited with status {server.returncode}")
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} is not healthy after {timeout:.0f} s")
