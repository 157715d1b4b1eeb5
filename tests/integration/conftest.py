"""Fixtures of the integration tests: the federation as real processes (`fed`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from common.db import create_db_engine, make_session_factory
from common.protection import DataKeys, install
from provincial_node.config import config_from_env as provincial_config_from_env
from tests.conftest import run_tmis
from tests.integration.federation import ProvinceNode, _seed_units, province_init_args

TMIS = str(Path(sys.executable).parent / "tmis")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class National:
    def __init__(self, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> None:
        self.env, self.log, self.proc, self.args = env, log, None, args
        self.url = "http://" + env["TMIS_BIND"]

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [TMIS, "national", "serve", *self.args],
            env={**os.environ, **self.env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("national node did not start: " + self.log.read_text()[-2000:])

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if getattr(self, "_out", None):
            self._out.close()


@pytest.fixture
def fed(tmp_path, database_url_factory):
    port = _port()
    nat_env = {
        "TMIS_DATA_DIR": str(tmp_path / "national"),
        "TMIS_DATABASE_URL": database_url_factory("e2e_nat"),
        "TMIS_BIND": f"127.0.0.1:{port}",
        "TMIS_LOG_ORIGIN": "e2e.tmis/log/v1",
    }
    run_tmis("national", "init", env=nat_env)
    national = National(nat_env, tmp_path / "national.log")
    national.start()
    provinces = {}
    for code in ("44", "11"):
        env = {
            "TMIS_DATA_DIR": str(tmp_path / f"p{code}"),
            "TMIS_DATABASE_URL": database_url_factory(f"e2e_p{code}"),
            "TMIS_PROVINCE_CODE": code,
            "TMIS_NATIONAL_URL": national.url,
            "TMIS_SYNC_BATCH_SIZE": "20",
        }
        run_tmis(*province_init_args(code), env=env)
        token = run_tmis("national", "enrol-token", "--province", code, env=nat_env).stdout.strip()
        run_tmis("province", "sync", "enrol", "--token", token, env=env)
        config = provincial_config_from_env(env)
        engine = install(create_db_engine(config.database), DataKeys.load(config.data_key_file))
        node = ProvinceNode(code, env, make_session_factory(engine), None)
        _seed_units(node)
        provinces[code] = node
    nat_engine = create_engine(nat_env["TMIS_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    yield national, provinces, nat_engine, nat_env
    national.kill()
    nat_engine.dispose()
    for node in provinces.values():
        node.factory.kw["bind"].dispose()
