"""The business areas of the provincial node and what each contributes to the shell: API blueprints, inbox
handlers for what the national node routes down, and scheduled jobs.

Adding an area (docs/architecture.md, "How to add a business area") means adding its package and one
:class:`Area` entry here; the app factory, the sync round, the scheduler and Alembic pick it up from this
list. Importing this module loads every area's models, so the node's metadata is complete (Alembic's
``env.py`` and the app import it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint as FlaskBlueprint
from flask_smorest import Blueprint

from provincial_node.accounts import api as accounts_api
from provincial_node.accounts import models as accounts_models  # noqa: F401 - registers the tables
from provincial_node.accounts import views as accounts_views
from provincial_node.audit_trail import api as audit_trail_api
from provincial_node.audit_trail import models as audit_trail_models  # noqa: F401 - registers the tables
from provincial_node.audit_trail import views as audit_trail_views
from provincial_node.jobs import Job
from provincial_node.notices import api as notices_api
from provincial_node.notices import models as notices_models  # noqa: F401 - registers the tables
from provincial_node.notices import views as notices_views
from provincial_node.sharing import api as sharing_api
from provincial_node.sharing import models as sharing_models  # noqa: F401 - registers the tables
from provincial_node.sync import models as sync_models  # noqa: F401 - registers the tables
from provincial_node.sync.inbox_handlers import InboxDispatch
from provincial_node.tasks import api as tasks_api
from provincial_node.tasks import models as tasks_models  # noqa: F401 - registers the tables
from provincial_node.tasks.service import TaskHandler, TaskHandlers
from provincial_node.teacher_files import api as teacher_files_api
from provincial_node.teacher_files import identity_notices, importexport, io_views, review_views
from provincial_node.teacher_files import models as teacher_files_models  # noqa: F401 - registers the tables
from provincial_node.teacher_files import views as teacher_files_views
from provincial_node.transfers import api as transfers_api
from provincial_node.transfers import inbound, local
from provincial_node.transfers import models as transfers_models  # noqa: F401 - registers the tables
from provincial_node.transfers import views as transfers_views


@dataclass(frozen=True)
class Area:
    name: str
    blueprints: tuple[Blueprint, ...] = ()  # the JSON API (flask-smorest)
    pages: tuple[FlaskBlueprint, ...] = ()  # the web pages (views.py + templates/<area>/)
    inbox: InboxDispatch = field(default_factory=InboxDispatch)
    jobs: tuple[Job, ...] = ()
    tasks: tuple[TaskHandler, ...] = ()  # kinds of background work (后台任务) the area runs


AREAS: tuple[Area, ...] = (
    Area("accounts", blueprints=accounts_api.BLUEPRINTS, pages=accounts_views.BLUEPRINTS),
    Area("audit_trail", blueprints=audit_trail_api.BLUEPRINTS, pages=audit_trail_views.BLUEPRINTS),
    Area("notices", blueprints=notices_api.BLUEPRINTS, pages=notices_views.BLUEPRINTS),
    Area("tasks", blueprints=tasks_api.BLUEPRINTS),
    Area(
        "teacher_files",
        blueprints=teacher_files_api.BLUEPRINTS,
        pages=(*teacher_files_views.BLUEPRINTS, *review_views.BLUEPRINTS, *io_views.BLUEPRINTS),
        inbox=InboxDispatch(handlers=identity_notices.INBOX_HANDLERS),
        tasks=(importexport.IMPORT_TASK,),
    ),
    Area(
        "transfers",
        blueprints=transfers_api.BLUEPRINTS,
        pages=transfers_views.BLUEPRINTS,
        inbox=InboxDispatch(inbound.INBOX_HANDLERS, inbound.REFUSAL_HANDLERS),
        jobs=(Job("expiry", 60, local.expire_due, "expire transfer and rotation requests past their deadline"),),
    ),
    Area("sharing", blueprints=sharing_api.BLUEPRINTS),
)


def blueprints() -> list[Blueprint]:
    return [bp for area in AREAS for bp in area.blueprints]


def pages() -> list[FlaskBlueprint]:
    return [bp for area in AREAS for bp in area.pages]


def inbox_dispatch() -> InboxDispatch:
    return InboxDispatch.merge([area.inbox for area in AREAS])


def jobs() -> list[Job]:
    return [job for area in AREAS for job in area.jobs]


def task_handlers() -> TaskHandlers:
    return TaskHandlers.of(h for area in AREAS for h in area.tasks)
