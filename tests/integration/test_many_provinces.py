"""Many provinces at once (issue 17 item 5; slow), on SQLite and PostgreSQL: a national node served by several
worker processes (``tmis national serve --workers 2``) and all 32 provincial nodes, each small, running their sync
rounds at the same moment — pushing batches (two records a batch, so each round sends several batches in order),
pulling their inbox (trust updates of every enrolment, duplicate-identity notices of the pairs of provinces that
registered the same person). Afterwards: every round ended ok, every batch is at the national node once and in its
province's order, no request was answered 500 and no deadlock was logged, every duplicate was found and told to
both provinces, and each worker's peak memory stayed bounded."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from common.config import NODE_PROVINCE_CODES
from common.db import session_scope
from common.divisions import CITIES_WITHOUT_COUNTIES, MUNICIPALITIES, all_divisions
from national_node.inbox.models import InboxMessage
from national_node.intake.models import Batch, TeacherCore
from national_node.provinces.models import Province
from provincial_node.accounts import accounts, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Unit
from provincial_node.app import build_runtime
from provincial_node.config import config_from_env as provincial_config_from_env
from provincial_node.jobs import make_sync_client
from provincial_node.sync.models import InboxReceived, SyncBatch
from tests.conftest import run_tmis
from tests.helpers import ctx
from tests.integration.conftest import National, _port
from tests.integration.federation import PASSWORD, ProvinceNode, cli, effective_teacher, province_init_args, rename

pytestmark = pytest.mark.slow
CODES = sorted(NODE_PROVINCE_CODES)
TEACHERS = 3  # per province; with batches of two records, two batches in the first round
WORKERS = 2
RSS_BOUND_MB = 600  # a worker's peak resident memory (each holds its app, engine and one batch at a time)


def _county(province: str) -> tuple[str | None, str]:
    """(city or None, county) division codes in force in ``province`` (66: form only, it has no GB/T 2260 code)."""
    if province == "66":
        return "660100", "660102"
    divisions = all_divisions()
    for code in sorted(divisions):
        pp, cc, xx = code[:2], code[2:4], code[4:]
        if pp != province or cc in ("00", "90") or xx == "00" or not divisions[code].current:
            continue
        if pp in MUNICIPALITIES:
            return None, code
        city = code[:4] + "00"
        if city in divisions and divisions[city].current and city not in CITIES_WITHOUT_COUNTIES:
            return city, code
    raise AssertionError(f"no county found for province {province}")


def _seed(node: ProvinceNode) -> None:
    p = node.code
    city, county = _county(p)
    school = f"21{p}000001"
    rows = []
    if city:
        rows.append(f"{city},市教育局,city,{p}0000,,,,,")
    rows.append(f"{county},区教育局,county,{city or p + '0000'},,,,,")
    rows.append(f"{school},实验小学,school,{county},,211,111,,{county}")
    with session_scope(node.factory) as s:
        units.import_units_csv(
            ctx(s, None),
            "code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code\n"
            + "\n".join(rows)
            + "\n",
        )
        for name, code in (("school_info", school), ("school_rev", school), ("county_info", county)):
            acc = accounts.create_account(
                ctx(s, None),
                username=f"{name}{p}",
                real_name=name,
                unit=units.get_unit_by_code(s, code),
                role="infoadmin",
                password=PASSWORD,
            )
            node.actors[name] = actor_for(s, acc)
        node.school_id = s.query(Unit).filter(Unit.code == school).one().id


def _worker_peak_rss_mb(parent_pid: int) -> list[float]:
    children = Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
    return peaks


def _all_at_once(nodes: list[ProvinceNode], work) -> dict[str, BaseException]:
    """Run ``work(node)`` for every province in its own thread, released together; the exceptions by province."""
    start, errors = threading.Barrier(len(nodes)), {}

    def run(node: ProvinceNode) -> None:
        try:
            start.wait(timeout=120)
            work(node)
        except BaseException as e:  # reported by the test, with the province
            errors[node.code] = e

    threads = [threading.Thread(target=run, args=(n,), name=f"province-{n.code}") for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not any(t.is_alive() for t in threads), "a province's round did not finish"
    return errors


def test_32_provinces_sync_at_once_with_a_multi_process_national_node(tmp_path, database_url_factory):
    port = _port()
    nat_env = {
        "TMIS_DATA_DIR": str(tmp_path / "national"),
        "TMIS_DATABASE_URL": database_url_factory("many_nat"),
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_LOG_ORIGIN": "many.tmis/log/v1",
    }
    run_tmis("national", "init", env=nat_env)
    national = National(nat_env, tmp_path / "national.log", args=("--workers", str(WORKERS)))
    national.start()
    nodes: list[ProvinceNode] = []
    try:
        for code in CODES:
            env = {
                "TMIS_DATA_DIR": str(tmp_path / f"p{code}"),
                "TMIS_DATABASE_URL": database_url_factory(f"many_p{code}"),
                "TMIS_PROVINCE_CODE": code,
                "TMIS_NATIONAL_URL": national.url,
                "TMIS_SYNC_BATCH_SIZE": "2",
            }
            cli(env, *province_init_args(code))
            runtime = build_runtime(provincial_config_from_env(env))
            client = make_sync_client(runtime)
            client.enrol(cli(nat_env, "national", "enrol-token", "--province", code).strip())
            node = ProvinceNode(code, env, runtime.session_factory, client)
            _seed(node)
            nodes.append(node)
        # pairs of provinces (11+12, 13+14, …) register the same person: 16 duplicates to find
        teachers: dict[str, list[str]] = {}
        for i, node in enumerate(nodes):
            pair_region = _county(CODES[i - i % 2])[1]
            seqs = [f"{i:02d}{k}" for k in range(TEACHERS - 1)] + [f"9{i // 2:02d}"]
            region = _county(node.code)[1]
            teachers[node.code] = [
                effective_teacher(node, seq, region=pair_region if seq.startswith("9") else region) for seq in seqs
            ]

        assert _all_at_once(nodes, lambda n: n.client.run_round("test")) == {}
        for node in nodes:  # a change in every province, then everyone again at once
            rename(node, teachers[node.code][0], "改名教师")
        assert _all_at_once(nodes, lambda n: n.client.run_round("test")) == {}
        assert (
            run_tmis("national", "duplicates", "--sweep", env=nat_env)
            .stdout.strip()
            .endswith("16 duplicate identities")
        )
        assert _all_at_once(nodes, lambda n: n.client.run_round("test")) == {}  # the notices the sweep added

        peaks = _worker_peak_rss_mb(national.proc.pid)
        assert len(peaks) == WORKERS and max(peaks) < RSS_BOUND_MB, peaks
        assert requests.get(national.url + "/health", timeout=5).status_code == 200
    finally:
        national.kill()
    log = (tmp_path / "national.log").read_text()
    assert not re.search(r"deadlock", log, re.I)
    assert not re.search(r" 500 [0-9.]+ms", log), [line for line in log.splitlines() if " 500 " in line][:5]

    engine = create_engine(nat_env["TMIS_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as c:
            for node in nodes:
                p = node.code
                with node.factory() as s:
                    sent = s.scalars(select(SyncBatch.seq).order_by(SyncBatch.seq)).all()
                    received = s.scalars(select(InboxReceived.seq).order_by(InboxReceived.seq)).all()
                    batches = s.execute(select(func.count()).select_from(SyncBatch)).scalar()
                assert batches >= 3  # two records a batch: at least two batches, then the rename
                stored = c.execute(select(Batch.seq).where(Batch.province_code == p).order_by(Batch.seq)).scalars()
                assert list(stored) == sent == list(range(1, len(sent) + 1)), p  # each once, in order, no gap
                row = c.execute(select(Province).where(Province.code == p)).one()
                assert row.last_seq == len(sent)
                cores = c.execute(select(TeacherCore.teacher_number).where(TeacherCore.province_code == p)).scalars()
                assert sorted(cores) == sorted(teachers[p])
                inbox = c.execute(
                    select(InboxMessage.seq).where(InboxMessage.province_code == p).order_by(InboxMessage.seq)
                ).scalars()
                assert list(inbox) == received == list(range(1, len(received) + 1)), p  # all pulled, gapless
                kinds = c.execute(
                    select(InboxMessage.kind).where(
                        InboxMessage.province_code == p, InboxMessage.kind == "duplicate_identity"
                    )
                ).scalars()
                assert len(list(kinds)) == 1, p  # its one duplicate, told once
    finally:
        engine.dispose()
        for node in nodes:
            node.factory.kw["bind"].dispose()
