"""The demo runs non-interactively to the end and stops what it started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.protection import DataKeys
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
from demo import demo_id_numbers


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
    # no ID number of a demo teacher in clear anywhere the nodes stored anything: both nodes' SQLite files (with
    # their WAL: the stored batch files, outboxes, messages, history), key and log files, the exported bundle
    numbers = demo_id_numbers(8)
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in stored) and len(numbers) == 32
    leaks = {
        str(p.relative_to(tmp_path)): [n for n in numbers if n.encode() in data]
        for p in stored
        if (data := p.read_bytes())
    }
    assert {k: v for k, v in leaks.items() if v} == {}
    # and they are the demo's teachers: each is on file in a province, found there through its blind index
    on_file = set()
    for code in ("11", "44"):
        keys = DataKeys.load(tmp_path / f"province-{code}" / "data.key")
        db = b"".join(p.read_bytes() for p in (tmp_path / f"province-{code}").glob("province.sqlite*"))
        on_file |= {n for n in numbers if keys.blind_index(n).encode() in db}
    assert on_file == set(numbers)


@pytest.mark.slow  # multi-process
def test_every_account_the_demo_prints_signs_in_and_a_killed_demo_stops_its_nodes(tmp_path):
    """Every account the demo prints signs in with the password it prints, with nothing left to change first;
    `kill <demo>` (SIGTERM) or a closed terminal stops the nodes it started, as Ctrl-C does: none is left holding
    its port."""
    import os
    import re
    import signal

    import requests
    from demo import NEW_PASSWORD

    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--data-dir", str(tmp_path), "--teachers", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = []
        for line in proc.stdout:  # waits for the demo to reach its interactive end
            out.append(line)
            if "Press Ctrl-C to stop the nodes" in line:
                break
        text = "".join(out)
        pids = [int(p) for p in re.findall(r"pid (\d+)\s+http://127\.0\.0\.1", text)]
        assert len(pids) == 3, text[-3000:]
        checked = []
        for base, block in re.findall(r"（\d\d）\s+(http://127\.0\.0\.1:\d+)/login\n((?:     \S+ .*\n)+)", text):
            for username in re.findall(r"^     (\S+)", block, re.M):
                body = {"username": username, "password": NEW_PASSWORD}
                r = requests.post(f"{base}/api/v1/auth/login", json=body, timeout=30)
                checked.append(username)
                assert r.status_code == 200 and not r.json()["must_change_password"], (username, r.text)
        assert {"admin11", "admin44", "query110105", "query440106"} <= set(checked), checked  # both lists read
    finally:
        proc.send_signal(signal.SIGTERM)  # also when an assertion above failed: no node left running
    rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0 and "stopping" in rest, rest
    for pid in pids:  # reaped by the demo: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
