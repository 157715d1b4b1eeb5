"""``tmis audit …``: offline verification of exported batches, receipts and checkpoints.

The protocol is specified in docs/protocol.md.
"""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """Offline auditor tools (specification: docs/protocol.md)."""
