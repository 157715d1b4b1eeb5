"""Running background tasks: a small thread pool started by ``tmis province serve``, or inline (tests, the CLI).

How a task runs:

* A runner **claims** the oldest queued task (``UPDATE … WHERE state = 'queued'``: of several runners — threads,
  or server processes sharing a PostgreSQL database — exactly one wins) and sets a **lease** that it renews
  while the task runs.
* The handler (:class:`~provincial_node.tasks.service.TaskHandler`) does its work in **steps**
  (:meth:`TaskWork.step`): each step is one transaction, acting as the task's owner, that also records the
  progress (``done``/``total``, a summary); so long work holds a database lock only for one step at a time,
  and other users' writes wait briefly instead of failing. On SQLite, requests of this process waiting for
  the write lock go first between two steps (:func:`common.db.yield_to_writers`): without it the next step,
  beginning at once, would win the lock every time. Before each step the task's cancel flag is read:
  a cancel request stops the work there (:class:`TaskCancelled`); what earlier steps committed stays.
* The end is recorded with the handler's result (``done``), the error (``failed``: a tmis error keeps its
  code and field errors in the result) or the partial result (``cancelled``); the uploaded payload is dropped.

**Restarts** (decided: fail with the reason, never resume): a task that was running when its process stopped
is marked ``failed`` — "interrupted … after N of M" — by the next runner that finds its lease expired (every
runner checks when it claims; ``serve`` stopping cleanly marks its own running tasks at once). Its committed
steps stay; for an import, uploading the file again is safe (rows already imported report ``unchanged``).
Resuming was not chosen: it would need the work's in-memory state (an import's per-file duplicate checks and
its row errors) stored with every step. Queued tasks simply wait for the next runner.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, update

from common.db import session_scope, utcnow, yield_to_writers
from common.errors import TmisError
from provincial_node.accounts.access import actor_for
from provincial_node.accounts.models import Account
from provincial_node.context import Actor, ProvinceContext, ProvinceRuntime
from provincial_node.tasks.models import Task
from provincial_node.tasks.service import TaskHandlers
from provincial_node.tasks.status import TaskState

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=90)
POLL_SECONDS = 1.0


class TaskCancelled(Exception):
    """The task was asked to stop (or its process is stopping); raised at the start of the next step."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TaskLost(Exception):
    """Another runner took the task over (this run's lease had expired): stop without recording anything."""


def new_runner_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class TaskWork:
    """What a handler gets: the task's parameters and payload, its owner, and transactions (:meth:`step`)."""

    def __init__(
        self,
        runtime: ProvinceRuntime,
        task_id: int,
        runner: str,
        owner: Actor,
        params: dict[str, Any],
        payload: bytes | None,
        *,
        stopping: threading.Event | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.runtime, self.task_id, self.runner, self.owner = runtime, task_id, runner, owner
        self.params, self.payload = params, payload
        self.done, self.total = 0, None
        self.partial: dict[str, Any] | None = None  # the handler's result so far (kept when cancelled)
        self._summary: dict[str, Any] | None = None
        self._stopping = stopping or threading.Event()
        self._on_progress = on_progress

    def report(self, done: int, total: int | None, result: dict[str, Any] | None = None) -> None:
        """Progress, recorded with the current step's transaction. ``result`` is the handler's result so far:
        its counts (every value that is not a list) are what a poll shows while it runs."""
        self.done, self.total = done, total
        if result is not None:
            self.partial = result
            self._summary = {k: v for k, v in result.items() if not isinstance(v, list | dict)}

    @contextmanager
    def step(self) -> Iterator[ProvinceContext]:
        """One transaction of the work, acting as the owner; it records the progress reported in it. Raises
        :class:`TaskCancelled` before the work when a cancel was requested (or the process is stopping)."""
        with self._transaction(check_cancel=True) as ctx:
            yield ctx

    @contextmanager
    def final(self) -> Iterator[ProvinceContext]:
        """A last transaction that runs even when the task is being cancelled (to record what was done)."""
        with self._transaction(check_cancel=False) as ctx:
            yield ctx

    @contextmanager
    def _transaction(self, *, check_cancel: bool) -> Iterator[ProvinceContext]:
        with session_scope(self.runtime.session_factory, write=True) as s:
            task = s.get(Task, self.task_id, with_for_update=True)
            if task is None or task.state != TaskState.RUNNING or task.runner != self.runner:
                raise TaskLost()
            if check_cancel:
                if task.cancel_requested:
                    who = s.get(Account, task.cancelled_by) if task.cancelled_by else None
                    raise TaskCancelled(f"cancelled by {who.username if who else 'an administrator'}")
                if self._stopping.is_set():
                    raise TaskCancelled("interrupted: the node was stopped")
            now = utcnow()
            yield self.runtime.context(s, self.owner, now)
            task.done, task.total = self.done, self.total
            if self._summary is not None:
                task.result = self._summary
            task.lease_until = now + LEASE
        yield_to_writers(self.runtime.engine)  # SQLite: requests waiting for the write lock go before the next step
        if self._on_progress:
            self._on_progress(self.done, self.total)


def claim_next(runtime: ProvinceRuntime, runner: str, task_id: int | None = None) -> int | None:
    """Fail the tasks whose runner is gone, then claim the oldest queued task (or ``task_id``) for ``runner``
    (None: nothing to claim)."""
    now = utcnow()
    if task_id is None:  # a read first: most ticks of an idle node find nothing, and take no write lock
        with session_scope(runtime.session_factory) as s:
            due = (Task.state == TaskState.QUEUED) | ((Task.state == TaskState.RUNNING) & (Task.lease_until < now))
            if s.scalar(select(Task.id).where(due).limit(1)) is None:
                return None
    with session_scope(runtime.session_factory, write=True) as s:
        fail_lost(s, now)
        stmt = select(Task.id).where(Task.state == TaskState.QUEUED)
        if task_id is not None:
            stmt = stmt.where(Task.id == task_id)
        for candidate in s.scalars(stmt.order_by(Task.id).limit(5)):
            claimed = s.execute(
                update(Task)
                .where(Task.id == candidate, Task.state == TaskState.QUEUED)
                .values(state=TaskState.RUNNING, runner=runner, started_at=now, lease_until=now + LEASE)
            ).rowcount
            if claimed:
                return int(candidate)
    return None


def fail_lost(session: Any, now: dt.datetime) -> int:
    """Running tasks whose lease expired (their process stopped) are failed with the reason."""
    lost = list(session.scalars(select(Task).where(Task.state == TaskState.RUNNING, Task.lease_until < now)))
    for task in lost:
        _interrupted(task, now, "the process running it stopped")
    return len(lost)


def _interrupted(task: Task, now: dt.datetime, why: str) -> None:
    where = f" after {task.done} of {task.total}" if task.total is not None else ""
    task.state, task.finished_at, task.payload = TaskState.FAILED, now, None
    task.error = (
        f"interrupted{where}: {why}; what was done before stays done — start it again "
        "(an import of the same file reports the rows already imported as unchanged)"
    )


def renew_leases(runtime: ProvinceRuntime, runner: str) -> None:
    now = utcnow()
    with session_scope(runtime.session_factory, write=True) as s:
        s.execute(
            update(Task).where(Task.runner == runner, Task.state == TaskState.RUNNING).values(lease_until=now + LEASE)
        )


def run_task(
    runtime: ProvinceRuntime,
    task_id: int,
    runner: str,
    *,
    stopping: threading.Event | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> str:
    """Run one claimed task to its end; returns the state it ended in."""
    handlers: TaskHandlers = runtime.tasks
    with session_scope(runtime.session_factory) as s:
        task = s.get(Task, task_id)
        handler = handlers.by_kind.get(task.kind)
        account = s.get(Account, task.owner_id)
        owner = actor_for(s, account) if account is not None and not account.disabled else None
        params, payload = dict(task.params), task.payload
    work = TaskWork(runtime, task_id, runner, owner, params, payload, stopping=stopping, on_progress=on_progress)  # type: ignore[arg-type]
    try:
        if handler is None:
            raise TmisError(f"no handler for task kind {task.kind!r} in this version of tmis")
        if owner is None:
            raise TmisError("the account that started the task is disabled")
        result = handler.run(work)
        return _finish(runtime, work, TaskState.DONE, result, None)
    except TaskLost:
        logger.warning("task %s: taken over by another runner; this run stops", task_id)
        return TaskState.FAILED
    except TaskCancelled as c:
        return _finish(runtime, work, TaskState.CANCELLED, work.partial, _how_far(work, c.reason))
    except TmisError as e:
        result = {**(work.partial or {}), "error": e.to_body()}
        if e.field_errors:
            result["errors"] = [*(work.partial or {}).get("errors", []), *e.details["errors"]]
        return _finish(runtime, work, TaskState.FAILED, result, e.message)
    except KeyboardInterrupt:  # the CLI's Ctrl-C: record how far it got, then let the command stop
        _finish(runtime, work, TaskState.CANCELLED, work.partial, _how_far(work, "interrupted (Ctrl-C)"))
        raise
    except Exception:
        logger.exception("task %s failed", task_id)
        return _finish(
            runtime, work, TaskState.FAILED, work.partial, "internal error; the operator log has the details"
        )


def _how_far(work: TaskWork, reason: str) -> str:
    where = f" after {work.done} of {work.total}" if work.total is not None else ""
    return f"{reason}{where}; what was done before stays done"


def _finish(runtime: ProvinceRuntime, work: TaskWork, state: str, result: Any, error: str | None) -> str:
    with session_scope(runtime.session_factory, write=True) as s:
        task = s.get(Task, work.task_id, with_for_update=True)
        if task is None or task.runner != work.runner or task.state != TaskState.RUNNING:
            return task.state if task else state
        task.state, task.result, task.error = state, result, error
        task.done, task.total = work.done, work.total
        task.finished_at, task.payload, task.lease_until = utcnow(), None, None
    return state


def run_pending(runtime: ProvinceRuntime, runner: str = "inline", limit: int = 100) -> list[int]:
    """Run queued tasks one after the other in this thread (tests, the CLI); returns their ids."""
    ran = []
    for _ in range(limit):
        task_id = claim_next(runtime, runner)
        if task_id is None:
            break
        run_task(runtime, task_id, runner)
        ran.append(task_id)
    return ran


class TaskRunner:
    """The background runner of ``serve``: a dispatcher thread that claims queued tasks while a worker is free
    and renews the leases of the running ones, and ``workers`` worker threads."""

    def __init__(self, runtime: ProvinceRuntime, workers: int) -> None:
        self.runtime, self.workers = runtime, workers
        self.id = new_runner_id()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tmis-task")
        self._busy = threading.Semaphore(workers)
        self._running = 0  # tasks of this runner in its workers (only the dispatcher thread changes it upward)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="tmis-task-dispatch", daemon=True)

    def start(self) -> TaskRunner:
        self._thread.start()
        logger.info("background tasks: %s worker(s), runner %s", self.workers, self.id)
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._running:
                    renew_leases(self.runtime, self.id)
                while self._busy.acquire(blocking=False):
                    task_id = claim_next(self.runtime, self.id)
                    if task_id is None:
                        self._busy.release()
                        break
                    with self._lock:
                        self._running += 1
                    self._pool.submit(self._run, task_id)
            except Exception:  # the dispatcher logs and carries on; a busy database is retried next tick
                logger.exception("task dispatcher")
            self._stopping.wait(POLL_SECONDS)

    def _run(self, task_id: int) -> None:
        try:
            run_task(self.runtime, task_id, self.id, stopping=self._stopping)
        finally:
            with self._lock:
                self._running -= 1
            self._busy.release()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask running tasks to stop at their next step and wait for them (up to ``timeout``); what is still
        running then is marked failed when its lease expires."""
        self._stopping.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
