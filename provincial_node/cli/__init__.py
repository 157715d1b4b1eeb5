"""``tmis province …``: commands of the provincial node (省级节点), one thin module per group; each builds the
node's runtime from the environment and calls services."""

from __future__ import annotations

import click

from common.cli import db_group
from provincial_node import MIGRATIONS_DIR
from provincial_node.cli import files, node, second_factor, security, sync
from provincial_node.config import config_from_env


@click.group()
def province() -> None:
    """Provincial node (省级节点): database, server, accounts, files, sync."""


province.add_command(db_group(MIGRATIONS_DIR, config_from_env))
for _module in (node, files, security, second_factor, sync):
    for _command in _module.COMMANDS:
        province.add_command(_command)
