"""Database layer shared by both nodes: engine factory, declarative base factory, transaction scope.

Rules:

* SQLite is made to behave like a real transactional database: foreign keys on, and the stdlib driver's
  implicit transaction handling switched off so that SQLAlchemy emits ``BEGIN`` itself (the recipe in the
  SQLAlchemy SQLite dialect docs). Without it SAVEPOINTs misbehave and test rollbacks leak.
* PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``).
* Every datetime column is timezone-aware UTC (:class:`UTCDateTime`); naive datetimes are refused on write.
* Each node has its own declarative base with :data:`NAMING_CONVENTION`, so every constraint has a name
  (Alembic batch mode on SQLite needs that).
* Services receive a session and never commit; :func:`session_scope` (jobs, CLI) or the Flask request owns
  the transaction. SQLAlchemy exceptions are wrapped into :class:`~common.errors.StorageError` here
  (:func:`storage_error`): lock contention becomes :class:`~common.errors.StorageBusyError` (503 with a retry
  hint), never a 500.
* SQLite has one writer at a time. A transaction that will write says so when it begins
  (:func:`begin_write`, ``session_scope(…, write=True)``; the API does it for every request that is not a
  GET): it then starts with ``BEGIN IMMEDIATE`` and waits up to the busy timeout for the write lock. A plain
  ``BEGIN`` that reads first and writes later cannot wait: once another writer has committed since its read,
  SQLite fails it at once (``SQLITE_BUSY_SNAPSHOT``). Long work commits in bounded chunks
  (:mod:`provincial_node.tasks`), so the lock is held briefly and other users' writes wait instead of failing.
* A change that reads a row, decides from what it read and then writes (approve a file waiting for review, open
  a transfer when none is open) loads that row with :func:`get_for_update`, or serialises on a name with
  :func:`lock_name` when there is no row yet: on PostgreSQL (READ COMMITTED) two such requests would otherwise
  both decide from the same state, and both write. On SQLite writers are already one at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    MetaData,
    String,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import NullType, TypeDecorator

from common.config import DatabaseConfig
from common.errors import StorageBusyError, StorageConflictError, StorageError

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset, so we normalise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: tmis stores timezone-aware UTC datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def make_base(name: str) -> type[DeclarativeBase]:
    """A fresh declarative base with the naming convention and the UTC datetime type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    return type(
        name,
        (DeclarativeBase,),
        {
            "metadata": metadata,
            "type_annotation_map": {dt.datetime: UTCDateTime()},
            "__abstract__": True,
        },
    )


WRITE = "tmis_write"  # connection execution option: this transaction will write (SQLite: BEGIN IMMEDIATE)


def begin_write(session: Session) -> None:
    """Declare, before the session's transaction begins, that it will write: on SQLite it begins with
    ``BEGIN IMMEDIATE`` (waiting up to the busy timeout for the write lock, instead of failing later when
    a read turns into a write); elsewhere nothing changes."""
    session.connection(execution_options={WRITE: True})


def get_for_update(session: Session, entity: type[Any], ident: Any) -> Any:
    """The row ``ident`` of ``entity`` for a change decided from its current state: ``SELECT … FOR UPDATE`` on
    PostgreSQL, so a concurrent change of the same row waits for this transaction and then reads what it
    committed; the object is refreshed from that read even if the session held it already. None when absent.
    (SQLite renders no ``FOR UPDATE``: its writers are one at a time — :func:`begin_write`.)"""
    return session.get(entity, ident, with_for_update=True, populate_existing=True)


def lock_name(session: Session, name: str) -> None:
    """Serialise the transactions that take the same ``name`` until they end (commit or rollback), for a check
    with no row to lock yet — e.g. "no open transfer request for this teacher number" before inserting one: a
    PostgreSQL transaction-level advisory lock on a 64-bit hash of the name. Nothing on SQLite (one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})


_BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization failure, deadlock, lock not available


def is_busy(e: BaseException) -> bool:
    """The database refused because of another transaction's lock, not because of this request."""
    orig = getattr(e, "orig", e)
    if getattr(orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    text_ = str(orig).lower()
    return isinstance(e, OperationalError) and ("database is locked" in text_ or "database table is locked" in text_)


def storage_error(e: SQLAlchemyError) -> StorageError:
    """The tmis error for a SQLAlchemy error: busy (503, retry), integrity (409) or unavailable (503)."""
    if is_busy(e):
        return StorageBusyError()
    if isinstance(e, IntegrityError):
        return StorageConflictError(
            "the database refused the write (integrity constraint)", details={"reason": str(e.orig)}
        )
    if isinstance(e, OperationalError):
        return StorageError("the database is unavailable", details={"reason": str(e.orig)})
    return StorageError("database error", details={"reason": str(e)})


class _Writers:
    """How many transactions of this process wait for SQLite's write lock (per engine). SQLite's busy handler
    polls with backoff, so a writer that commits and begins again at once (a long task's next chunk) would win
    the lock every time and starve the waiting requests; :func:`yield_to_writers` lets them in first."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.waiting = 0


def yield_to_writers(engine: Engine, timeout: float = 5.0) -> None:
    """Between two steps of long work on SQLite: wait (up to ``timeout``) until no transaction of this process
    is waiting for the write lock any more. Elsewhere (PostgreSQL, row locks) it returns at once."""
    writers: _Writers | None = getattr(engine, "tmis_writers", None)
    if writers is None:
        return
    with writers.cond:
        writers.cond.wait_for(lambda: writers.waiting == 0, timeout)


def _sqlite_transactional(engine: Engine, wal: bool, busy_timeout_ms: int = 30_000) -> None:
    writers = _Writers()
    engine.tmis_writers = writers  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # stop pysqlite's own BEGIN handling
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if wal:  # readers keep working while a sync round writes
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(WRITE):
            conn.exec_driver_sql("BEGIN")
            return
        with writers.cond:
            writers.waiting += 1
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            with writers.cond:
                writers.waiting -= 1
                writers.cond.notify_all()


def create_db_engine(config: DatabaseConfig, **kwargs: Any) -> Engine:
    """Create an engine for SQLite (transactional, FK on, WAL for file databases) or PostgreSQL."""
    url = config.url
    if config.is_sqlite:
        engine = create_engine(url, echo=config.echo, **kwargs)
        _sqlite_transactional(
            engine, wal=url not in ("sqlite://", "sqlite:///:memory:"), busy_timeout_ms=config.busy_timeout_ms
        )
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=config.echo, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session], *, write: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, always close. ``write=True`` declares a
    writing transaction (:func:`begin_write`).

    SQLAlchemy errors leave as :class:`StorageError` (busy: :class:`StorageBusyError`; a constraint:
    :class:`StorageConflictError`).
    """
    session = factory()
    try:
        if write:
            begin_write(session)
        yield session
        session.commit()
    except SQLAlchemyError as e:
        session.rollback()
        raise storage_error(e) from e
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def redact_url(url: str) -> str:
    """The URL without its password, for logs and CLI output."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def one_of(session: Session, column: Any, values: Any) -> Any:
    """``column IN (values)`` for a WHERE clause. On PostgreSQL it is ``column = ANY(:array)``: one parameter,
    so the statement text stays the same whatever the number of values and is not parsed again per call (a
    thousand-value IN list cost more than the rows it selected)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        if set(map(type, values)) <= {str}:
            # The array as one text literal (psycopg's list dumper adapts element by element in Python), sent
            # untyped so that PostgreSQL reads the literal once, as a parameter of the array type. A typed text
            # parameter (``CAST($1::VARCHAR AS VARCHAR(68)[])``) is an I/O coercion the planner does not fold:
            # in a sequential scan the literal was parsed again for every row — 3.8 s instead of 6 ms for 1 000
            # identity keys against 7 000 rows of other provinces (the duplicate query, many provinces at once).
            return column == any_(cast(bindparam(None, _array_literal(values), type_=NullType()), ARRAY(column.type)))
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _array_literal(values: list[str]) -> str:
    """PostgreSQL's text form of a one-dimensional array of strings: every element double-quoted, with ``\\``
    and ``"`` escaped (so NULL, commas, braces and spaces stay plain text)."""
    joined = "".join(values)
    if "\\" in joined or '"' in joined:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}' if values else "{}"


_COPY_SPECIAL = (b"\\", b"\t", b"\n", b"\r")


def _copy_escape(text: bytes) -> bytes:
    """A value in PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped."""
    if any(map(text.__contains__, _COPY_SPECIAL)):
        text = text.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return text


def _escape_all(texts: list[bytes]) -> list[bytes]:
    """:func:`_copy_escape` over a column, checked once over the whole column (usually nothing to escape)."""
    joined = b"".join(texts)
    if any(map(joined.__contains__, _COPY_SPECIAL)):
        return list(map(_copy_escape, texts))
    return texts


class RawJSON(bytes):
    """A JSON value already encoded as UTF-8, for a JSON column in :func:`bulk_insert`: sent to PostgreSQL's
    ``COPY`` as it is, without decoding and encoding it again (the server's ``json`` input checks it is JSON);
    decoded first for the other databases. The caller vouches for its content like for any other value."""


def _with_nulls(values: list[Any], encode: Any) -> list[bytes]:
    if None not in values:
        return encode(values)
    present = [v for v in values if v is not None]
    it = iter(encode(present))
    return [b"\\N" if v is None else next(it) for v in values]


def _copy_column(table: Any, column: str, values: list[Any]) -> list[bytes]:
    """The COPY text fields (UTF-8) of one column's values, a whole column at a time: this runs for every value of
    every row, and per-value Python calls cost more than the rest of the intake's row building. Bytes, because
    joining text that mixes ASCII and Chinese widens every piece. The types the nodes bulk-insert: JSON,
    strings, integers and UTC datetimes."""
    typ = table.c[column].type
    if isinstance(typ, JSON):
        # what json.dumps refuses (datetimes, dataclasses) orjson refuses too with these options
        dumps = partial(orjson.dumps, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)

        # orjson escapes every control character, so only backslashes need COPY's escape
        def encode(vs: list[Any]) -> list[bytes]:
            texts = vs if set(map(type, vs)) == {RawJSON} else [v if type(v) is RawJSON else dumps(v) for v in vs]
            return [t.replace(b"\\", b"\\\\") for t in texts]

        return _with_nulls(values, encode)
    if isinstance(typ, String):
        return _with_nulls(
            values, lambda vs: _escape_all(list(map(str.encode, vs if set(map(type, vs)) <= {str} else map(str, vs))))
        )
    if isinstance(typ, Integer):
        return _with_nulls(values, lambda vs: list(map(str.encode, map(str, map(int, vs)))))
    if isinstance(typ, UTCDateTime):  # the rows of one insert usually share one timestamp
        return _with_nulls(values, lambda vs: list(map({v: v.isoformat().encode() for v in set(vs)}.__getitem__, vs)))
    raise TypeError(f"{table.name}.{column}: bulk_insert has no COPY encoder for {type(typ).__name__} columns")


def set_toast_compression(bind: Any, table: str, columns: Sequence[str], method: str) -> bool:
    """On PostgreSQL built with lz4, compress the large values of ``columns`` with ``method`` (``lz4`` or
    ``default``) from now on; values already stored keep theirs (both stay readable). Returns whether it was set:
    SQLite, and PostgreSQL without lz4, keep their default. Used by migrations: a stored batch file is about
    half a megabyte, and pglz spent 6 µs of server time per record compressing it where lz4 spends 1 µs
    (docs/performance.md)."""
    if bind.dialect.name != "postgresql":
        return False
    supported = bind.execute(
        text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    if not supported:
        return False
    for column in columns:
        bind.execute(text(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}'))
    return True


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``table`` (a mapped class or Table) in the session's transaction: PostgreSQL
    ``COPY … FROM STDIN`` (the fastest path into the server; JSON columns are sent as JSON text, datetimes
    must be timezone-aware), one multi-row ``INSERT`` elsewhere. Every row has the same keys, which are column
    names; server defaults (an autoincrement id) are left to the database.

    The COPY text is formatted here, a whole batch in one buffer (psycopg's per-row ``write_row`` cost more
    than the rest of the intake's row building); a storage test round-trips tabs, newlines, backslashes,
    NULLs, JSON and datetimes through it on PostgreSQL."""
    if not rows:
        return
    tbl = getattr(table, "__table__", table)
    columns = list(rows[0])
    for c in columns:
        if isinstance(tbl.c[c].type, UTCDateTime):
            for r in rows:
                if r[c] is not None and r[c].tzinfo is None:
                    raise ValueError(f"naive datetime refused in {tbl.name}.{c}")
    if session.get_bind().dialect.name != "postgresql":
        session.execute(tbl.insert(), _decoded(tbl, rows))
        return
    _copy_rows(session, tbl, rows, columns, tbl.name)


def _decoded(tbl: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with RawJSON values decoded (for the databases that take them through an INSERT)."""
    json_columns = [c for c in rows[0] if isinstance(tbl.c[c].type, JSON)]
    if not json_columns:
        return rows
    return [{**r, **{c: orjson.loads(bytes(r[c])) for c in json_columns if type(r[c]) is RawJSON}} for r in rows]


def _copy_rows(session: Session, tbl: Any, rows: list[dict[str, Any]], columns: list[str], target: str) -> None:
    fields = [_copy_column(tbl, c, list(map(itemgetter(c), rows))) for c in columns]
    text = b"\n".join(map(b"\t".join, zip(*fields, strict=True))) + b"\n"
    raw = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{target}" ({names}) FROM STDIN') as copy:
        copy.write(text)


def bulk_update(session: Session, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    """Update many rows of ``table`` by the column ``key`` (its primary key) in the session's transaction; every
    row has the same keys, which are column names, ``key`` among them. On PostgreSQL the rows go into a temporary
    table with ``COPY`` (formatted as by :func:`bulk_insert`) and one ``UPDATE … FROM`` applies them: the ORM's
    bulk update sends one ``UPDATE`` statement per row, which cost about two thirds of applying a 1 000-change
    batch (docs/performance.md). Elsewhere the ORM's bulk update by primary key."""
    if not rows:
        return
    tbl = getattr(table, "__table__", table)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(table), _decoded(tbl, rows))
        return
    columns = list(rows[0])
    scratch = f"_bulk_{tbl.name}_{hashlib.sha256(' '.join(columns).encode()).hexdigest()[:12]}"
    names = ", ".join(f'"{c}"' for c in columns)
    # one per connection and column set, emptied at every commit (no catalogue churn per batch); the table and
    # column names come from the model, never from data
    create = f'CREATE TEMPORARY TABLE IF NOT EXISTS "{scratch}" ON COMMIT DELETE ROWS AS SELECT {names} FROM '  # noqa: S608
    session.execute(text(create + f'"{tbl.name}" WITH NO DATA'))
    session.execute(text('DELETE FROM "' + scratch + '"'))  # noqa: S608 - rows of an earlier update here
    _copy_rows(session, tbl, rows, columns, scratch)
    assignments = ", ".join(f'"{c}" = s."{c}"' for c in columns if c != key)
    apply = f'UPDATE "{tbl.name}" AS t SET {assignments} FROM "{scratch}" AS s WHERE t."{key}" = s."{key}"'  # noqa: S608
    session.execute(text(apply))
