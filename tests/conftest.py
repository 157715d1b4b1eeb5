"""Test harness: every storage test runs on SQLite and on PostgreSQL.

* ``dialect`` is parametrised over ``sqlite`` and ``postgresql``. A test (or fixture) that asks for
  ``node_engine`` / ``db_session`` runs once per dialect.
* PostgreSQL: the server at ``TMIS_TEST_PG_URL`` (default ``postgresql+psycopg://root@127.0.0.1:5432/test``)
  is used only to CREATE and DROP this run's own databases (``tmis_t_<pid>_<hex>_<node>``); no other
  database is touched. When the server is unreachable the PostgreSQL half is skipped with a visible
  message — unless ``CI`` is set, in which case the whole run fails.
* Schemas are built by the nodes' Alembic migrations, never by ``create_all``.
* ``db_session`` wraps each test in an outer transaction with SAVEPOINTs (``join_transaction_mode=
  "create_savepoint"``), rolled back at the end, so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from common import migrations
from common.config import DatabaseConfig
from common.db import create_db_engine
from common.protection import DataKeys, install

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get("TMIS_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NODES = {
    "province": "provincial_node",
    "national": "national_node",
}


def _pg_reachable() -> str | None:
    """None when reachable, else the reason."""
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        eng.dispose()
        return None
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"


_PG_PROBLEM = _pg_reachable()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests (real servers, many processes, the browser) first, in their collected order: with several
    test processes (scripts/test) the longest modules then start at once instead of running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    if _PG_PROBLEM and IN_CI:
        raise pytest.UsageError(
            f"CI=true but PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()} is unreachable: {_PG_PROBLEM}"
        )


def pytest_report_header(config: pytest.Config) -> str:
    if _PG_PROBLEM:
        return f"PostgreSQL half SKIPPED: {_PG_PROBLEM} (set TMIS_TEST_PG_URL, or start PostgreSQL)"
    return f"PostgreSQL half enabled: {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)}"


_DATABASE_NUMBERS = itertools.count()


class _PgDatabases:
    """The PostgreSQL databases this test run created (dropped at the end of the run)."""

    def __init__(self) -> None:
        self.prefix = f"tmis_t_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def create(self, suffix: str) -> str:
        name = f"{self.prefix}_{suffix}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[_PgDatabases]:
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable ({_PG_PROBLEM}); PostgreSQL half skipped")
    dbs = _PgDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url_factory(dialect: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Returns a function making a fresh, empty database URL of the current dialect."""
    counter = _DATABASE_NUMBERS  # one numbering per process: with several test processes (scripts/test) this
    # session fixture is set up again whenever the dialect changes, and a fresh count would name a database twice

    def make(label: str) -> str:
        n = next(counter)
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / f'{label}_{n}.sqlite'}"
        dbs: _PgDatabases = request.getfixturevalue("pg_databases")
        return dbs.create(f"{label}_{n}")

    return make


@pytest.fixture(scope="session")
def migrated_engines(dialect: str, database_url_factory) -> Iterator[dict[str, Engine]]:
    """One database per node for this dialect, built by the node's migrations (session-scoped)."""
    import importlib

    engines: dict[str, Engine] = {}
    for node, package in NODES.items():
        engine = create_db_engine(DatabaseConfig(database_url_factory(node)))
        migrations.upgrade(engine, importlib.import_module(package).MIGRATIONS_DIR)
        if node == "province":  # the node's data keys: ID numbers are encrypted at rest
            install(engine, DataKeys.generate())
        engines[node] = engine
    yield engines
    for e in engines.values():
        e.dispose()


@pytest.fixture(params=list(NODES))
def node(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def node_engine(migrated_engines: dict[str, Engine], node: str) -> Engine:
    return migrated_engines[node]


@pytest.fixture
def db_session(node_engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    with node_engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: shared conformance vectors not available")
    return SHARED


def run_tmis(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120, input: str | None = None
):
    """Run the installed ``tmis`` command in a subprocess (the way users run it); ``input`` is its standard
    input (answers to its prompts, e.g. a password)."""
    import subprocess

    exe = Path(sys.executable).parent / "tmis"
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [str(exe), *args], env=full_env, capture_output=True, text=True, timeout=timeout, input=input or ""
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tmis {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
