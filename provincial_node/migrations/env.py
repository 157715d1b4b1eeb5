"""Alembic environment of the provincial node (省级节点): every area's tables on one metadata.

Run through ``tmis province db …`` or :mod:`common.migrations`, which pass a connection in
``config.attributes["connection"]``.
"""

from common.migrations import run_env
from provincial_node import areas  # noqa: F401 - loads every area's models into the metadata
from provincial_node.db import Base

run_env(Base.metadata)
