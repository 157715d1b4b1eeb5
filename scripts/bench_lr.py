"""The peer of ``scripts/bench``: PostgreSQL's built-in logical replication (issue 18, docs/performance.md).

What a database administrator would set up instead of tmis: a publication on a province-shaped source table
(the columns of the national ``teacher_core``) and a subscription in a database holding the national store's
own schema (``tmis national db upgrade``: ``teacher_core`` with its primary key, province and identity indexes
and foreign key to ``province``, and ``teacher_core_history``), with a trigger that writes the same per-record
history row the intake writes (enabled ``ALWAYS``, so that the apply worker fires it).

Figures, from the same N rows the benchmark syncs:

* ``lr_rps``: N rows written to the source in transactions of 1 000 rows (``COPY``), streamed — from the
  first commit on the source until the last row is visible in the national database;
* ``lr_delta_s``: D changes to rows the national database already holds, written in one transaction (as the
  benchmark writes tmis's D outbox entries), from the start of that transaction until the last change is
  visible in the national database; ``lr_delta_lag_s`` is the part after the commit (replication alone).

Logical replication needs ``wal_level=logical``. When the benchmark's server lacks it (the shared server here
has ``replica``), :class:`LocalPostgres` starts a PostgreSQL instance of its own from the installed binaries
on a free loopback port (as the ``postgres`` user when run as root: initdb refuses root) and the benchmark runs
on it; ``scripts/bench`` says so.

What the peer does not do, and tmis does: verify a signature or anything else about the rows, check the foreign
key (the apply worker runs as a replica, which skips it), commit durably before acknowledging (subscriptions
commit with ``synchronous_commit=off`` by default and fetch again from the slot after a crash), keep the rows
as the province signed them, or answer with a receipt.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

PG_BIN = Path(os.environ.get("TMIS_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
BATCH = 1000
CORE_COLUMNS = (
    "teacher_number varchar(13) PRIMARY KEY, province_code varchar(2) NOT NULL, version integer NOT NULL, "
    "op varchar(16) NOT NULL, fields json NOT NULL, withheld json NOT NULL, identity_key varchar(68), "
    "updated_at timestamp with time zone NOT NULL"
)
SLOT_ACTIVE = sa.text("SELECT active FROM pg_replication_slots WHERE slot_name = :slot")
VISIBLE = sa.text("SELECT 1 FROM teacher_core WHERE teacher_number = :tn AND version = :version")
APPLY_ERRORS = sa.text(
    "SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats "
    "WHERE subname = 'bench_sub'"
)
HISTORY_TRIGGER = """
-- the apply worker runs with an empty search_path: every name is qualified
CREATE FUNCTION bench_core_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.teacher_core_history (teacher_number, province_code, version, batch_hash, op, fields, applied_at)
    VALUES (NEW.teacher_number, NEW.province_code, NEW.version, pg_catalog.repeat('0', 64), NEW.op, NULL,
            pg_catalog.now());
    RETURN NULL;
END $$;
CREATE TRIGGER bench_core_history AFTER INSERT OR UPDATE ON teacher_core
    FOR EACH ROW EXECUTE FUNCTION bench_core_history();
ALTER TABLE teacher_core ENABLE ALWAYS TRIGGER bench_core_history;
"""


def sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def wal_level(admin_url: str) -> str:
    engine = sa.create_engine(sa_url(admin_url))
    try:
        with engine.connect() as c:
            return c.exec_driver_sql("SHOW wal_level").scalar_one()
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """A throw-away PostgreSQL instance with ``wal_level=logical`` on a free loopback port (trust auth, superuser
    ``postgres``), made with ``initdb`` and run with ``pg_ctl``; :meth:`stop` removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tmis-bench-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")

    def start(self) -> LocalPostgres:
        os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must reach its data directory inside
        self.data.mkdir(mode=0o700)
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data} "
            "-c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _core_row(r: dict, province: str, version: int, fields_text: str, withheld_text: str, key: str | None) -> tuple:
    return (r["teacher_number"], province, version, "upsert", fields_text, withheld_text, key, dt.datetime.now(dt.UTC))


def measure(admin_url: str, rows: list[dict], d: int, province: str, national_schema) -> dict[str, float]:
    """Set up the peer on the server at ``admin_url`` (``wal_level=logical``), stream ``rows``, then D changes.
    ``national_schema(url)`` creates the national store's schema in the database at ``url`` (the benchmark runs
    ``tmis national db upgrade``). The databases, subscription and slot are dropped afterwards."""
    import orjson

    from national_node.intake.intake import identity_key

    tag = f"tmis_bench_{os.getpid()}_{secrets.token_hex(2)}_lr"
    src_db, dst_db, slot = f"{tag}_src", f"{tag}_dst", f"{tag}_slot"
    url = sa.engine.make_url(sa_url(admin_url))
    src_url = url.set(database=src_db).render_as_string(hide_password=False)
    dst_url = url.set(database=dst_db).render_as_string(hide_password=False)
    admin = sa.create_engine(sa_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for db in (src_db, dst_db):
            c.exec_driver_sql(f'CREATE DATABASE "{db}"')
    src = sa.create_engine(src_url, isolation_level="AUTOCOMMIT")
    dst = sa.create_engine(dst_url, isolation_level="AUTOCOMMIT")
    subscribed = False
    try:
        national_schema(dst_url.replace("postgresql+psycopg://", "postgresql://", 1))
        with dst.connect() as c:
            c.execute(
                sa.text(
                    "INSERT INTO province (code, name, last_seq, last_version, inbox_seq, inbox_acked) "
                    "VALUES (:code, 'bench', 0, 0, 0, 0) ON CONFLICT DO NOTHING"
                ),
                {"code": province},
            )
            c.exec_driver_sql(HISTORY_TRIGGER)
        with src.connect() as c:
            c.exec_driver_sql(f"CREATE TABLE teacher_core ({CORE_COLUMNS})")
            c.exec_driver_sql("CREATE PUBLICATION bench_pub FOR TABLE teacher_core")
            # a subscription to a database of the same cluster must not create its slot itself (it would wait
            # for its own transaction): the slot is made here first
            c.execute(sa.text("SELECT pg_create_logical_replication_slot(:slot, 'pgoutput')"), {"slot": slot})
        conninfo = f"host={url.host or '127.0.0.1'} port={url.port or 5432} dbname={src_db} user={url.username}"
        if url.password:
            conninfo += f" password={url.password}"
        with dst.connect() as c:
            c.exec_driver_sql(
                f"CREATE SUBSCRIPTION bench_sub CONNECTION '{conninfo}' PUBLICATION bench_pub "
                f"WITH (create_slot = false, slot_name = '{slot}', copy_data = false)"
            )
            subscribed = True
        _wait(src, SLOT_ACTIVE, {"slot": slot}, timeout=60)

        prepared = [
            _core_row(
                r,
                province,
                r["version"],
                orjson.dumps(r["fields"]).decode(),
                orjson.dumps(r["withheld"]).decode(),
                identity_key(r["fields"]),
            )
            for r in rows
        ]
        last = rows[-1]["teacher_number"]
        with src.connect() as c:
            raw = c.connection.driver_connection
            raw.autocommit = False
            first_commit = None
            for i in range(0, len(prepared), BATCH):
                with raw.cursor() as cur, cur.copy("COPY teacher_core FROM STDIN") as cp:
                    for row in prepared[i : i + BATCH]:
                        cp.write_row(row)
                raw.commit()
                if first_commit is None:
                    first_commit = time.perf_counter()
            raw.autocommit = True
        done = _wait(dst, VISIBLE, {"tn": last, "version": rows[-1]["version"]}, timeout=3600, interval=0.005)
        lr_rps = len(rows) / (done - first_commit)

        # D changes to rows the national database holds, written in one transaction (as the benchmark writes
        # tmis's D outbox entries)
        changed = []
        for i, r in enumerate(rows[:d]):
            fields = {**r["fields"], "JBXX": {**r["fields"]["JBXX"], "ZGXLM": "11"}}
            changed.append((orjson.dumps(fields).decode(), len(rows) + i + 1, r["teacher_number"]))
        with src.connect() as c:
            raw = c.connection.driver_connection
            raw.autocommit = True
            with raw.cursor() as cur:
                started = time.perf_counter()
                cur.execute(
                    "UPDATE teacher_core t SET fields = v.f::json, version = v.ver, updated_at = now() "
                    "FROM unnest(%s::text[], %s::integer[], %s::text[]) AS v(f, ver, tn) WHERE t.teacher_number = v.tn",
                    ([f for f, _v, _t in changed], [v for _f, v, _t in changed], [t for _f, _v, t in changed]),
                )
                last_commit = time.perf_counter()
        _fields, last_version, last_tn = changed[-1]
        done = _wait(dst, VISIBLE, {"tn": last_tn, "version": last_version}, timeout=600)
        with dst.connect() as c:
            history = c.exec_driver_sql("SELECT count(*) FROM teacher_core_history").scalar_one()
            held = c.exec_driver_sql("SELECT count(*) FROM teacher_core").scalar_one()
        if history != len(rows) + d or held != len(rows):
            raise RuntimeError(
                f"logical replication: {held} rows and {history} history rows, expected {len(rows)} and {len(rows) + d}"
            )
        return {
            "lr_rps": round(lr_rps, 1),
            "lr_delta_s": round(done - started, 3),
            "lr_delta_lag_s": round(done - last_commit, 3),
        }
    finally:
        if subscribed:
            with dst.connect() as c:  # detach the slot first, so that dropping needs no connection to it
                c.exec_driver_sql("ALTER SUBSCRIPTION bench_sub DISABLE")
                c.exec_driver_sql("ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)")
                c.exec_driver_sql("DROP SUBSCRIPTION bench_sub")
        src.dispose()
        dst.dispose()
        with admin.connect() as c:
            for _ in range(100):  # the walsender lets go of the slot shortly after the subscription is disabled
                active = c.execute(SLOT_ACTIVE, {"slot": slot}).scalar()
                if not active:
                    break
                time.sleep(0.1)
            if active is not None:
                c.execute(sa.text("SELECT pg_drop_replication_slot(:slot)"), {"slot": slot})
            for db in (src_db, dst_db):
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.dispose()


def _wait(engine: sa.Engine, query: sa.TextClause, params: dict, timeout: float, interval: float = 0.001) -> float:
    """Poll ``query`` every ``interval`` seconds until it returns a true value; the time it first did. Stops
    with the subscription's error when its apply worker failed (it would only retry)."""
    deadline = time.perf_counter() + timeout
    checked = time.perf_counter()
    with engine.connect() as c:
        while True:
            if c.execute(query, params).scalar():
                return time.perf_counter()
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError(f"logical replication: not visible after {timeout} s: {query}")
            if now - checked > 1:
                checked = now
                if c.execute(APPLY_ERRORS).scalar():
                    raise RuntimeError("logical replication: the apply worker failed (see the server's log)")
            time.sleep(interval)
