"""`tmis national serve --workers N`: the workers go with their parent, even when it is killed outright."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_tmis
from tests.integration.conftest import National, _port


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, …), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


@pytest.mark.slow  # real server processes
def test_the_workers_exit_when_their_parent_is_killed(tmp_path):
    env = {
        "TMIS_DATA_DIR": str(tmp_path / "national"),
        "TMIS_BIND": f"127.0.0.1:{_port()}",
        "TMIS_LOG_ORIGIN": "workers.tmis/log/v1",
    }
    run_tmis("national", "init", env=env)
    national = National(env, tmp_path / "national.log", args=("--workers", "2"))
    national.start()
    try:
        parent = national.proc.pid
        children = Path(f"/proc/{parent}/task/{parent}/children")
        _wait_for(lambda: len(children.read_text().split()) == 2, 30, "two workers")
        workers = [int(p) for p in children.read_text().split()]
    finally:
        national.kill()  # SIGKILL: the parent cannot stop its workers itself
    # orphaned, each worker sees its parent gone and exits (a zombie until whoever adopted it reaps it)
    _wait_for(lambda: all(_state(p) in (None, "Z") for p in workers), 15, f"workers {workers} to exit")
