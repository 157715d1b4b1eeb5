"""The business areas of the provincial node and what each contributes to the shell: API blueprints, inbox
handlers for what the national node routes down, and scheduled jobs.

Adding an area (docs/architecture.md, "How to add a business area") means adding its package and one
:class:`Area` entry here; the app factory, the sync round, the scheduler and Alembic pick it up from this
list. Importing this module loads every area's models, so the node's metadata is complete (Alembic's
``env.py`` and the app import it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_smorest import Blueprint

from provincial_node.accounts import api as accounts_api
from provincial_node.accounts import models as accounts_models  # noqa: F401 - registers the tables
from provincial_node.audit_trail import api as audit_trail_api
from provincial_node.audit_trail import models as audit_trail_models  # noqa: F401 - registers the tables
from provincial_node.jobs import Job
from provincial_node.sharing import api as sharing_api
from provincial_node.sharing import models as sharing_models  # noqa: F401 - registers the tables
from provincial_node.sync import models as sync_models  # noqa: F401 - registers the tables
from provincial_node.sync.inbox_handlers import InboxDispatch
from provincial_node.teacher_files import api as teacher_files_api
from provincial_node.teacher_files import identity_notices
from provincial_node.teacher_files import models as teacher_files_models  # noqa: F401 - registers the tables
from provincial_node.transfers import api as transfers_api
from provincial_node.transfers import inbound, local
from provincial_node.transfers import models as transfers_models  # noqa: F401 - registers the tables


@dataclass(frozen=True)
class Area:
    name: str
    blueprints: tuple[Blueprint, ...] = ()
    inbox: InboxDispatch = field(default_factory=InboxDispatch)
    jobs: tuple[Job, ...] = ()


AREAS: tuple[Area, ...] = (
    Area("accounts", blueprints=accounts_api.BLUEPRINTS),
    Area("audit_trail", blueprints=audit_trail_api.BLUEPRINTS),
    Area(
        "teacher_files",
        blueprints=teacher_files_api.BLUEPRINTS,
        inbox=InboxDispatch(handlers=identity_notices.INBOX_HANDLERS),
    ),
    Area(
        "transfers",
        blueprints=transfers_api.BLUEPRINTS,
        inbox=InboxDispatch(inbound.INBOX_HANDLERS, inbound.REFUSAL_HANDLERS),
        jobs=(Job("expiry", 60, local.expire_due, "expire transfer and rotation requests past their deadline"),),
    ),
    Area("sharing", blueprints=sharing_api.BLUEPRINTS),
)


def blueprints() -> list[Blueprint]:
    return [bp for area in AREAS for bp in area.blueprints]


def inbox_dispatch() -> InboxDispatch:
    return InboxDispatch.merge([area.inbox for area in AREAS])


def jobs() -> list[Job]:
    return [job for area in AREAS for job in area.jobs]
