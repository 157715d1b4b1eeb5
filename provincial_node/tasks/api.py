"""``/api/v1/tasks``: the caller's background tasks (后台任务) — list, poll one, cancel. Work is started by the
area that owns it (``POST /api/v1/imports/<group>/tasks``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from provincial_node.context import current_context, runtime
from provincial_node.tasks import service
from provincial_node.tasks.models import Task
from provincial_node.tasks.schemas import TaskOut, TaskQuery, TasksOut

bp = Blueprint("tasks", __name__, url_prefix="/api/v1", description="Background tasks: progress, result, cancel")


def labelled(task: Task) -> Task:
    """The task with its kind's label (for TaskOut)."""
    task.kind_label = runtime().tasks.label(task.kind)  # type: ignore[attr-defined]
    return task


@bp.route("/tasks")
class Tasks(MethodView):
    @bp.arguments(TaskQuery, location="query")
    @bp.response(200, TasksOut)
    def get(self, args: dict[str, Any]) -> Any:
        """Tasks the caller started or of units in their subtree, newest first."""
        return {"tasks": [labelled(t) for t in service.list_tasks(current_context(), **args)]}


@bp.route("/tasks/<int:task_id>")
class TaskOne(MethodView):
    @bp.response(200, TaskOut)
    def get(self, task_id: int) -> Any:
        """One task: state, progress (done/total, percent), result or error. Poll it while it runs."""
        return labelled(service.get(current_context(), task_id))


@bp.route("/tasks/<int:task_id>/cancel")
class TaskCancel(MethodView):
    @bp.response(200, TaskOut)
    def post(self, task_id: int) -> Any:
        """Cancel: a queued task at once, a running one between two chunks (done chunks stay)."""
        return labelled(service.cancel(current_context(), task_id))


BLUEPRINTS = (bp,)
