"""Real-browser tests: Debian's Chromium driven by Playwright (pytest-playwright's ``page`` fixture, pointed at
the system browser — Playwright's own download is not reachable on these machines) against a real
``tmis province serve`` on a loopback port, on a province seeded through the services.

Without ``/usr/bin/chromium`` the tests skip with a message — except with ``CI=true``, where they fail (``.ci/run``
installs the browser when it is missing)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from common.db import session_scope
from provincial_node.accounts import accounts, units
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Unit
from provincial_node.app import create_app
from provincial_node.config import config_from_env
from provincial_node.context import runtime
from provincial_node.teacher_files import files, review, self_service
from tests.helpers import ctx
from tests.provincial.conftest import PASSWORD, UNITS_CSV
from tests.provincial.web.conftest import basic

CHROMIUM = os.environ.get("TMIS_CHROMIUM", "/usr/bin/chromium")
TMIS = str(Path(sys.executable).with_name("tmis"))
# name → (unit code, role): the school's entry clerk and its reviewer are different accounts (谁填报谁负责)
PEOPLE = {
    "clerk": ("2144000001", "infoadmin"),
    "checker": ("2144000001", "infoadmin"),
    "schooladmin": ("2144000001", "sysadmin"),
    "county": ("440106", "infoadmin"),
    "countyadmin": ("440106", "sysadmin"),
}


def _browser_missing() -> str | None:
    if Path(CHROMIUM).is_file():
        return None
    return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium fonts-noto-cjk; .ci/run does this)"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    return {"executable_path": CHROMIUM, "args": ["--no-sandbox", "--disable-gpu", "--lang=zh-CN"]}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    return {"locale": "zh-CN", "viewport": {"width": 1360, "height": 900}}


@dataclass
class Province:
    url: str
    data_dir: Path
    env: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)
    teachers: dict[str, int] = field(default_factory=dict)
    teacher_login: str = ""

    def db(self):
        """A session on the served database (to check what the pages did)."""
        config = config_from_env(self.env)
        app = create_app(config)
        return session_scope(runtime(app).session_factory), runtime(app).engine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(env: dict[str, str]) -> tuple[dict[str, int], dict[str, int], str]:
    app = create_app(config_from_env(env))
    rt = runtime(app)
    try:
        with session_scope(rt.session_factory) as db:
            units.import_units_csv(ctx(db), UNITS_CSV.replace("440000,广东省教育厅,province,,,,,,\n", ""))
            ids = {u.code: u.id for u in db.scalars(select(Unit))}
            made = {}
            for name, (code, role) in PEOPLE.items():
                acc = accounts.create_account(
                    ctx(db),
                    username=name,
                    real_name=f"{name}（测试）",
                    unit=db.get(Unit, ids[code]),
                    role=role,
                    password=PASSWORD,
                )
                acc.must_change_password = False
                made[name] = actor_for(db, acc)
            clerk, checker, county = made["clerk"], made["checker"], made["county"]
            t = files.register_teacher(
                ctx(db, clerk), ids["2144000001"], {k: basic("701")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
            )
            files.update_group(ctx(db, clerk), t.id, "JBXX", {k: v for k, v in basic("701").items() if k != "RYZTM"})
            files.submit(ctx(db, clerk), t.id)
            review.review(ctx(db, checker), t.id, "approve")
            review.review(ctx(db, county), t.id, "approve")
            acc = self_service.create_teacher_account(
                ctx(db, made["schooladmin"]),
                t.id,
                name=t.name,
                gender="1",
                birth_date="1988-03-15",
                id_number=t.doc_number,
                initial_password=PASSWORD,
            )
            acc.must_change_password = False
            draft = files.register_teacher(
                ctx(db, clerk), ids["2144000001"], {k: basic("703")[k] for k in ("XM", "SFZJLXM", "SFZJH")}
            )
            return ids, {"effective": t.id, "draft": draft.id}, acc.username
    finally:
        rt.engine.dispose()


@pytest.fixture(scope="module")
def province(tmp_path_factory, browser_type_launch_args) -> Province:
    """A provincial node 44 made by ``tmis province init``, seeded, and served by ``tmis province serve`` on a
    free loopback port (SQLite in a temporary data directory); stopped after the module."""
    data = tmp_path_factory.mktemp("browser-node")
    port = _free_port()
    env = {
        "TMIS_DATA_DIR": str(data),
        "TMIS_PROVINCE_CODE": "44",
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_SYNC_SCHEDULE_MINUTES": "0",
        "TMIS_LOG_LEVEL": "WARNING",
    }
    full_env = {**os.environ, **env}
    subprocess.run(
        [TMIS, "province", "init", "--province-code", "44", "--admin-username", "admin44",
         "--admin-name", "广东省管理员", "--admin-password", PASSWORD, "--second-factor-roles", ""],
        env=full_env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    ids, teachers, teacher_login = _seed(env)
    log = (data / "serve.log").open("wb")
    server = subprocess.Popen([TMIS, "province", "serve"], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # wait for /health (a condition, not a fixed sleep)
        if server.poll() is not None:
            pytest.fail(f"tmis province serve exited: {(data / 'serve.log').read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            server.kill()
            pytest.fail("tmis province serve did not become healthy in 60 s")
        time.sleep(0.2)
    yield Province(url, data, env, ids, teachers, teacher_login)
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    shutil.rmtree(data, ignore_errors=True)
