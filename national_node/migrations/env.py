"""Alembic environment of the National node (国家级节点).

Run through `tmis national db …` or common.migrations (which pass a connection in
`config.attributes["connection"]`); batch mode so SQLite can alter tables.
"""

from alembic import context
from sqlalchemy import pool

from common.config import DatabaseConfig
from common.db import UTCDateTime, create_db_engine
from national_node.models import Base

config = context.config
target_metadata = Base.metadata


def _render_item(type_, obj, autogen_context):
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import common.db")
        return "common.db.UTCDateTime()"
    return False


def _configure(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(DatabaseConfig(url=config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
