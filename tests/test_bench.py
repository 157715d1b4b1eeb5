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
    assert set(data) == FIELDS
    assert data["records"] == 20_000
    assert all(isinstance(v, int | float) and v > 0 for v in data.values())
