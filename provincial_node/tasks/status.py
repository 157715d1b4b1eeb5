"""States of a background task (任务状态)::

queued ──claim──▶ running ──▶ done
  │                  ├──────▶ failed      (an error, or the node stopped while it ran)
  └── cancel ──▶ cancelled ◀── cancel (honoured between chunks)
"""

from __future__ import annotations

from common.enums import LabelledStrEnum


class TaskState(LabelledStrEnum):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "运行中"
    DONE = "done", "已完成"
    FAILED = "failed", "失败"
    CANCELLED = "cancelled", "已取消"


FINISHED = (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)
