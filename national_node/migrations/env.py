"""Alembic environment of the national node (国家级节点): every area's tables on one metadata.

Run through ``tmis national db …`` or :mod:`common.migrations`, which pass a connection in
``config.attributes["connection"]``.
"""

from common.migrations import run_env
from national_node import areas  # noqa: F401 - loads every area's models into the metadata
from national_node.db import Base

run_env(Base.metadata)
