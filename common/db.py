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
  the transaction. SQLAlchemy exceptions are wrapped into :class:`~common.errors.StorageError` here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import DateTime, MetaData, any_, bindparam, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from common.config import DatabaseConfig
from common.errors import StorageConflictError, StorageError

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
    return type(name, (DeclarativeBase,), {
        "metadata": metadata,
        "type_annotation_map": {dt.datetime: UTCDateTime()},
        "__abstract__": True,
    })


def _sqlite_transactional(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # stop pysqlite's own BEGIN handling
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if wal:  # readers keep working while a sync round writes
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def create_db_engine(config: DatabaseConfig, **kwargs: Any) -> Engine:
    """Create an engine for SQLite (transactional, FK on, WAL for file databases) or PostgreSQL."""
    url = config.url
    if config.is_sqlite:
        engine = create_engine(url, echo=config.echo, **kwargs)
        _sqlite_transactional(engine, wal=url not in ("sqlite://", "sqlite:///:memory:"))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=config.echo, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, always close.

    SQLAlchemy errors leave as :class:`StorageError` (or :class:`StorageConflictError`).
    """
    session = factory()
    try:
        yield session
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise StorageConflictError("the database refused the write (integrity constraint)",
                                   details={"reason": str(e.orig)}) from e
    except OperationalError as e:
        session.rollback()
        raise StorageError("the database is unavailable", details={"reason": str(e.orig)}) from e
    except SQLAlchemyError as e:
        session.rollback()
        raise StorageError("database error", details={"reason": str(e)}) from e
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

        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _copy_escape(text: str) -> str:
    """A value in PostgreSQL's COPY text format: backslash, tab, newline and carriage return escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_encoder(table: Any, column: str) -> Any:
    """A function turning one Python value of ``column`` into its COPY text field (specialised by column
    type: this runs for every value of every row). The types the nodes bulk-insert: JSON, strings, integers and
    UTC datetimes."""
    import orjson
    from sqlalchemy import JSON, Integer, String

    typ = table.c[column].type
    if isinstance(typ, JSON):
        # what json.dumps refuses (datetimes, dataclasses) orjson refuses too with these options
        opts = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        return lambda v: "\\N" if v is None else _copy_escape(orjson.dumps(v, option=opts).decode())
    if isinstance(typ, String):
        return lambda v: "\\N" if v is None else _copy_escape(v if isinstance(v, str) else str(v))
    if isinstance(typ, Integer):
        return lambda v: "\\N" if v is None else str(int(v))
    if isinstance(typ, UTCDateTime):
        last: list[Any] = [None, "\\N"]  # rows of one insert usually share one timestamp object

        def when(v: Any) -> str:
            if v is not last[0]:
                last[0], last[1] = v, "\\N" if v is None else v.isoformat()
            return last[1]

        return when

    raise TypeError(f"{table.name}.{column}: bulk_insert has no COPY encoder for {type(typ).__name__} columns")


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
        session.execute(tbl.insert(), rows)
        return
    encoders = [(c, _copy_encoder(tbl, c)) for c in columns]
    text = "".join(["\t".join([enc(r[c]) for c, enc in encoders]) + "\n" for r in rows])
    raw = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{tbl.name}" ({names}) FROM STDIN') as copy:
        copy.write(text.encode("utf-8"))
