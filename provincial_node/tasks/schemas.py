"""Request and response schemas of the background-task area."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Query, count_field
from provincial_node.tasks.status import TaskState


class TaskQuery(Query):
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf([s.value for s in TaskState]))
    kind = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 500))
    offset = count_field(query=True, load_default=0)


class TaskOut(Out):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "files.import …"})
    kind_label = ma.fields.String(metadata={"description": "批量导入 …"})
    state = ma.fields.String(metadata={"description": "queued | running | done | failed | cancelled"})
    state_label = ma.fields.Function(lambda t: TaskState.label_of(t.state), metadata={"description": "排队中 …"})
    owner_id = ma.fields.Integer()
    unit_id = ma.fields.Integer()
    params = ma.fields.Dict()
    done = ma.fields.Integer()
    total = ma.fields.Integer(allow_none=True)
    percent = ma.fields.Function(
        lambda t: None if not t.total else min(100, round(100 * t.done / t.total)), allow_none=True
    )
    result = ma.fields.Dict(
        allow_none=True, metadata={"description": "counts while running; the whole result at the end"}
    )
    error = ma.fields.String(allow_none=True)
    cancel_requested = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)


class TasksOut(Out):
    tasks = ma.fields.List(ma.fields.Nested(TaskOut))
