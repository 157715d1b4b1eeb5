"""The documented walk-through (docs/walkthrough-province.sh) runs as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_walkthrough_runs_as_written(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WORK": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(REPO / "docs" / "walkthrough-province.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "effective" in proc.stdout
    assert "1 outbox entry, version 1" in proc.stdout
    assert (tmp_path / "province-11" / "node.key").stat().st_mode & 0o777 == 0o600
