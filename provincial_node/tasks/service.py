"""Starting, reading and cancelling background tasks (后台任务), scoped like everything else.

* An area contributes a :class:`TaskHandler` per kind of work (``files.import``: 批量导入); ``areas.py`` collects
  them and the runtime carries them to the runner (:mod:`provincial_node.tasks.runner`). This area knows no
  other area.
* :func:`start` queues a task for the acting user in the caller's transaction, for a unit of their subtree;
  the runner picks it up once that transaction has committed.
* A user sees the tasks they started and the tasks of units in their subtree (teachers: only their own);
  others answer *not found*.
* :func:`cancel`: a queued task is cancelled at once; a running one is asked to stop and stops between two
  chunks of its work (what the chunks before committed stays). The owner, or an information or system
  administrator of a unit above, may cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from common.errors import ConflictError, NotFoundError
from provincial_node.context import ProvinceContext, Role
from provincial_node.tasks.models import Task
from provincial_node.tasks.status import FINISHED, TaskState


@dataclass(frozen=True)
class TaskHandler:
    """A kind of background work: ``run(work)`` does it (see :class:`~provincial_node.tasks.runner.TaskWork`) and
    returns the result (JSON)."""

    kind: str
    label: str  # what users call it: 批量导入
    run: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class TaskHandlers:
    by_kind: Mapping[str, TaskHandler] = field(default_factory=dict)

    @classmethod
    def of(cls, handlers: Iterable[TaskHandler]) -> TaskHandlers:
        out: dict[str, TaskHandler] = {}
        for h in handlers:
            if h.kind in out:
                raise ValueError(f"two handlers for task kind {h.kind!r}")
            out[h.kind] = h
        return cls(out)

    def label(self, kind: str) -> str:
        h = self.by_kind.get(kind)
        return h.label if h else kind


def start(
    ctx: ProvinceContext,
    kind: str,
    unit: Any,
    params: dict[str, Any],
    payload: bytes | None = None,
    total: int | None = None,
) -> Task:
    """Queue a task of ``kind`` for the acting user, concerning ``unit`` (of their subtree)."""
    actor = ctx.user
    if not actor.contains(unit):
        raise NotFoundError(f"unit {unit.id} not found")
    task = Task(
        kind=kind,
        state=TaskState.QUEUED,
        owner_id=actor.account_id,
        unit_id=unit.id,
        unit_path=unit.path,
        params=params,
        payload=payload,
        total=total,
        created_at=ctx.now,
    )
    ctx.session.add(task)
    ctx.session.flush()
    return task


def _visible(ctx: ProvinceContext, task: Task) -> bool:
    actor = ctx.user
    if task.owner_id == actor.account_id:
        return True
    return actor.role != Role.TEACHER and task.unit_path.startswith(actor.unit_path)


def get(ctx: ProvinceContext, task_id: int) -> Task:
    task = ctx.session.get(Task, task_id)
    if task is None or not _visible(ctx, task):
        raise NotFoundError(f"task {task_id} not found", details={"task_id": task_id})
    return task


def list_tasks(
    ctx: ProvinceContext, *, state: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
) -> list[Task]:
    """Tasks the actor may see, newest first."""
    actor = ctx.user
    stmt = select(Task)
    if actor.role == Role.TEACHER:
        stmt = stmt.where(Task.owner_id == actor.account_id)
    else:
        stmt = stmt.where(
            (Task.owner_id == actor.account_id) | Task.unit_path.startswith(actor.unit_path, autoescape=True)
        )
    if state:
        stmt = stmt.where(Task.state == state)
    if kind:
        stmt = stmt.where(Task.kind == kind)
    return list(ctx.session.scalars(stmt.order_by(Task.id.desc()).limit(min(limit, 500)).offset(offset)))


def cancel(ctx: ProvinceContext, task_id: int) -> Task:
    """Cancel a queued task now, or ask a running one to stop between two chunks."""
    actor = ctx.user
    task = get(ctx, task_id)
    if task.owner_id != actor.account_id:  # visible (get), so in the actor's subtree
        actor.require(Role.INFOADMIN, Role.SYSADMIN)
    if task.state in FINISHED:
        raise ConflictError(f"the task is already {task.state}", details={"state": task.state})
    task.cancel_requested, task.cancelled_by = True, actor.account_id
    if task.state == TaskState.QUEUED:
        task.state, task.finished_at, task.payload = TaskState.CANCELLED, ctx.now, None
        task.error = f"cancelled by {actor.username} before it started"
    return task
