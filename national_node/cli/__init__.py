"""``tmis national …``: commands of the national node (国家级节点), one thin module per group."""

from __future__ import annotations

import click

from common.cli import db_group
from national_node import MIGRATIONS_DIR
from national_node.cli import datakeys, node, operations, reconcile, registry, transfers
from national_node.config import config_from_env


@click.group()
def national() -> None:
    """National node (国家级节点): database, server, province registry, acceptance log."""


national.add_command(db_group(MIGRATIONS_DIR, config_from_env))
for _module in (node, registry, operations, transfers, reconcile, datakeys):
    for _command in _module.COMMANDS:
        national.add_command(_command)
