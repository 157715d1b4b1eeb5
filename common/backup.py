"""Backups of a node's database (``tmis province db backup`` / ``tmis national db backup``, and ``db restore``),
docs/operations.md "Backup and restore".

* **SQLite**: the online backup API of SQLite (``sqlite3.Connection.backup``): a consistent copy taken page by
  page while the node keeps serving (readers and the WAL writer are not blocked for the whole copy). Restore
  copies the backup back the same way; stop the node first.
* **PostgreSQL**: ``pg_dump --format=custom`` (a consistent snapshot of one database, taken in one transaction
  while the node serves) and ``pg_restore --clean --if-exists --no-owner --single-transaction``. The password,
  if the URL has one, goes to the tools in ``PGPASSWORD``, never on their command line. For a point-in-time
  restore a province runs PostgreSQL with WAL archiving as well (docs/operations.md).

Key files are not in the database and not in these backups: they are backed up separately (and a node restored
from a database backup keeps the keys it holds today, which is what a key rotation since the backup needs).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from common.config import DatabaseConfig
from common.errors import ConfigError, StorageError


def _sqlite_path(database: DatabaseConfig) -> Path:
    from sqlalchemy.engine import make_url

    path = make_url(database.url).database
    if not path or path == ":memory:":
        raise ConfigError(
            "an in-memory SQLite database cannot be backed up",
            details={"variable": "TMIS_DATABASE_URL", "value": database.url, "reason": "in memory"},
        )
    return Path(path)


def _libpq(database: DatabaseConfig) -> tuple[str, dict[str, str]]:
    """The libpq URL (no password) and the environment for the PostgreSQL tools."""
    from sqlalchemy.engine import make_url

    url = make_url(database.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(
            f"{name} is not installed: install the PostgreSQL client tools of the server's major version",
            details={"variable": "PATH", "value": name, "reason": "missing"},
        )
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StorageError(f"{what} failed: {done.stderr.strip()[-500:]}", details={"reason": done.stderr[-500:]})


def backup(database: DatabaseConfig, out: Path) -> str:
    """Write a backup of the node's database to ``out`` (which must not exist); returns how it was taken."""
    if out.exists():
        raise ConfigError(
            f"{out} exists; refusing to overwrite a backup",
            details={"variable": "-o", "value": str(out), "reason": "exists"},
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if database.is_sqlite:
        source = _sqlite_path(database)
        if not source.exists():
            raise ConfigError(
                f"no database at {source}",
                details={"variable": "TMIS_DATABASE_URL", "value": str(source), "reason": "missing"},
            )
        with sqlite3.connect(source) as src, sqlite3.connect(out) as dst:
            src.backup(dst, pages=1024)
        src.close()
        dst.close()
        return "SQLite online backup"
    url, env = _libpq(database)
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={out}", url], env, "pg_dump")
    return "pg_dump --format=custom"


def restore(database: DatabaseConfig, source: Path) -> str:
    """Replace the node's database with the backup at ``source`` (stop the node first)."""
    if not source.is_file():
        raise ConfigError(
            f"no backup at {source}", details={"variable": "BACKUP", "value": str(source), "reason": "missing"}
        )
    if database.is_sqlite:
        target = _sqlite_path(database)
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst, pages=1024)
        src.close()
        dst.close()
        return "SQLite backup API"
    url, env = _libpq(database)
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={url}",
            str(source),
        ],
        env,
        "pg_restore",
    )
    return "pg_restore --clean --single-transaction"
