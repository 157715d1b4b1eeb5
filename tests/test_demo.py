"""The demo runs non-interactively to the end and stops what it started."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_demo_once(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--once", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all steps succeeded" in proc.stdout
    assert proc.stdout.count('"status": "ok"') == 3
