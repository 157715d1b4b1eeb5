"""The demo runs non-interactively to the end and stops what it started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow  # multi-process: a national node and two provincial nodes as real servers
def test_demo_once(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--once", "--data-dir", str(tmp_path), "--teachers", "8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all steps succeeded" in proc.stdout
    assert "all healthy" in proc.stdout
    assert proc.stdout.count("round 1: ok") == 2  # one sync round per province
    assert "all checks passed" in proc.stdout  # the exported bundle verified offline
    assert "2 of 32 provinces enrolled" in proc.stdout
    for node in ("national", "11", "44"):  # servers log at TMIS_LOG_LEVEL (INFO) with UTC timestamps
        assert "Z INFO waitress: Serving on" in (tmp_path / f"{node}.log").read_text()
