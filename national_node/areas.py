"""The areas of the national node and the API blueprints each contributes (see docs/architecture.md). Importing
this module loads every area's models, so the metadata is complete (the app and Alembic's ``env.py`` do)."""

from __future__ import annotations

from flask_smorest import Blueprint

from national_node.inbox import api as inbox_api
from national_node.inbox import models as inbox_models  # noqa: F401 - registers the tables
from national_node.intake import api as intake_api
from national_node.intake import models as intake_models  # noqa: F401 - registers the tables
from national_node.ledger import api as ledger_api
from national_node.ledger import models as ledger_models  # noqa: F401 - registers the tables
from national_node.provinces import models as provinces_models  # noqa: F401 - registers the tables
from national_node.reconcile import api as reconcile_api
from national_node.reconcile import models as reconcile_models  # noqa: F401 - registers the tables
from national_node.registry import api as registry_api
from national_node.transfers import api as transfers_api
from national_node.transfers import models as transfers_models  # noqa: F401 - registers the tables

AREAS: dict[str, tuple[Blueprint, ...]] = {
    "registry": registry_api.BLUEPRINTS,
    "ledger": ledger_api.BLUEPRINTS,
    "intake": intake_api.BLUEPRINTS,
    "transfers": transfers_api.BLUEPRINTS,
    "inbox": inbox_api.BLUEPRINTS,
    "reconcile": reconcile_api.BLUEPRINTS,
}


def blueprints() -> list[Blueprint]:
    return [bp for bps in AREAS.values() for bp in bps]
