"""`scripts/bench --quick` runs and writes well-formed JSON (no timing is asserted: figures live in
docs/performance.md, measured by the benchmark itself)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import _PG_PROBLEM, REPO

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
}


@pytest.mark.slow
@pytest.mark.skipif(_PG_PROBLEM is not None, reason=f"the benchmark needs PostgreSQL: {_PG_PROBLEM}")
def test_bench_quick_writes_well_formed_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data) == FIELDS | {"provinces"}
    assert data["records"] == 20_000
    assert all(isinstance(v, int | float) and v > 0 for k, v in data.items() if k != "provinces")
    _check_provinces(data["provinces"])


def _check_provinces(figure: dict) -> None:
    """The provinces figure (issue 17 item 5): records/s with K provinces at once, ratios against one."""
    assert figure["workers"] >= 2
    assert set(figure["runs"]) == {"1", "2"}  # --quick: 1 and 2 provinces (the full run: 1, 4, 32)
    for k, run in figure["runs"].items():
        assert run["provinces"] == int(k) and run["records"] == 2_000
        assert run["seconds"] > 0 and run["rps"] > 0
    assert set(figure["ratios"]) == {"2_vs_1"} and figure["ratios"]["2_vs_1"] > 0
