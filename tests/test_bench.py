"""`scripts/bench --quick` runs and writes well-formed JSON with the peer's figures (issue 18), the pages figure
(issue 15) and the provinces figure (issue 17), both on a server without ``wal_level=logical`` (the benchmark
starts a PostgreSQL instance of its own) and on one with it (an instance the test starts; the pages and provinces
figures only in the first run). No timing is asserted: figures live in docs/performance.md, measured by the
benchmark itself."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _PG_PROBLEM, PG_ADMIN_URL, REPO

sys.path.insert(0, str(REPO / "scripts"))
import bench_lr  # scripts/ is not a package

FIELDS = {
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
    # issue 18
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
}
PAGES = ("county_list", "school_list", "file", "review_queue")
CAN_START_POSTGRES = (bench_lr.PG_BIN / "initdb").exists() and (
    os.geteuid() != 0 or subprocess.run(["id", "postgres"], capture_output=True).returncode == 0
)


def _quick(out: Path, server_url: str, *, all_figures: bool = True) -> str:
    # the second run (the server with wal_level=logical) only shows the sync figures work there: small N
    only_sync = [] if all_figures else ["--no-pages", "--no-provinces", "--records", "2000"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--json", str(out), *only_sync],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TMIS_BENCH_PG_URL": server_url},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data) == (FIELDS | {"pages", "provinces"} if all_figures else FIELDS)
    assert data["records"] == (20_000 if all_figures else 2_000)
    assert all(isinstance(data[k], int | float) and data[k] > 0 for k in FIELDS)
    assert data["round_vs_lr"] == pytest.approx(data["round_rps"] / data["lr_rps"], rel=1e-3)
    assert data["delta_vs_lr"] == pytest.approx(data["delta_large_s"] / data["lr_delta_s"], rel=1e-2)
    if all_figures:
        _check_pages(data["pages"])
        _check_provinces(data["provinces"])
    return proc.stdout


def _check_pages(pages: dict) -> None:
    """The pages figure (scripts/bench_pages.py) at the quick size: well-formed, each page timed."""
    assert pages["teachers"] == 5000 and pages["target_p95_ms"] == 300
    assert 0 < pages["school_teachers"] < pages["county_teachers"] < pages["teachers"]
    assert pages["review_queue_files"] > 0 and pages["requests_per_page"] == 50
    for page in PAGES:
        figure = pages[page]
        assert set(figure) == {"p50_ms", "p95_ms", "max_ms", "met"}
        assert 0 < figure["p50_ms"] <= figure["p95_ms"] <= figure["max_ms"]
        assert figure["met"] is (figure["p95_ms"] < pages["target_p95_ms"])


def _check_provinces(figure: dict) -> None:
    """The provinces figure (issue 17 item 5): records/s with K provinces at once, ratios against one."""
    assert figure["workers"] >= 2
    assert set(figure["runs"]) == {"1", "2"}  # --quick: 1 and 2 provinces (the full run: 1, 4, 32)
    for k, run in figure["runs"].items():
        assert run["provinces"] == int(k) and run["records"] == 2_000
        assert run["seconds"] > 0 and run["rps"] > 0
    assert set(figure["ratios"]) == {"2_vs_1"} and figure["ratios"]["2_vs_1"] > 0


@pytest.mark.slow
@pytest.mark.skipif(_PG_PROBLEM is not None, reason=f"the benchmark needs PostgreSQL: {_PG_PROBLEM}")
@pytest.mark.skipif(not CAN_START_POSTGRES, reason="PostgreSQL's initdb (and a postgres user when root) needed")
def test_bench_quick_on_a_server_without_logical_wal_starts_its_own(tmp_path):
    server = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    if bench_lr.wal_level(server) == "logical":
        pytest.skip("the test server has wal_level=logical (the other test covers it)")
    stdout = _quick(tmp_path / "bench.json", server)
    assert "started a PostgreSQL instance of our own" in stdout
    port = int(re.search(r"127\.0\.0\.1:(\d+), wal_level=logical", stdout).group(1))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # stopped again


@pytest.mark.slow
@pytest.mark.skipif(not CAN_START_POSTGRES, reason="PostgreSQL's initdb (and a postgres user when root) needed")
def test_bench_quick_on_a_server_with_logical_wal(tmp_path):
    server = bench_lr.LocalPostgres().start()
    try:
        assert bench_lr.wal_level(server.url) == "logical"
        stdout = _quick(tmp_path / "bench.json", server.url, all_figures=False)
        assert "has wal_level=logical: this run measures on it" in stdout
    finally:
        server.stop()
