"""Scheduled jobs of the provincial node (APScheduler, started only by ``tmis province serve``).

The sync round runs every ``TMIS_SYNC_SCHEDULE_MINUTES`` (default 15; 0 disables it), one at a time
(``max_instances=1``, coalesced). Areas contribute their own jobs (:mod:`provincial_node.areas`), e.g. the
hourly expiry of transfer requests; each runs in its own transaction with a context of the node itself.
A job logs its failure and never kills the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from common.db import session_scope
from common.keyfile import read_private_key
from common.metrics import observe_job
from common.transport import RequestsTransport, Transport
from provincial_node.context import ProvinceContext, ProvinceRuntime
from provincial_node.sync.keys import KeyRing
from provincial_node.sync.round import SyncClient, SyncSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A job an area contributes: ``run(ctx)`` in one transaction, every ``minutes``."""

    id: str
    minutes: int
    run: Callable[[ProvinceContext], Any]
    description: str = ""


def make_sync_client(runtime: ProvinceRuntime, transport: Transport | None = None, **settings: Any) -> SyncClient:
    """The node's sync client: its signing keys (read anew for every client, so a key added by
    ``tmis province keys rotate`` is used from the next round on), the national node's URL, the configured batch
    settings (``settings`` overrides them, e.g. in tests)."""
    config = runtime.config
    ring = KeyRing.load(config.signing_key_path)
    if not ring.signers:
        read_private_key(config.signing_key_path)  # raises the configuration error naming the missing file
    base = SyncSettings(
        config.province_code,
        batch_size=config.sync_batch_size,
        push_window=config.sync_push_window,
        key_path=config.signing_key_path,
    )
    return SyncClient(runtime, transport or RequestsTransport(config.national_url), ring, replace(base, **settings))


def sync_job(runtime: ProvinceRuntime) -> None:
    started, ok = time.monotonic(), False
    try:
        rnd = make_sync_client(runtime).run_round("schedule")
        ok = rnd.status == "ok"
        logger.info("sync round %s: %s (%s batches, %s records)", rnd.id, rnd.status, rnd.batches, rnd.records)
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("sync round failed")
    finally:
        observe_job("sync", time.monotonic() - started, ok)


def run_job(runtime: ProvinceRuntime, job: Job) -> Any:
    """Run one area job now, in its own transaction, as the node itself."""
    started = time.monotonic()
    try:
        with session_scope(runtime.session_factory) as s:
            result = job.run(runtime.context(s))
        if result:
            logger.info("job %s: %s", job.id, result)
        observe_job(job.id, time.monotonic() - started, True)
        return result
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("job %s failed", job.id)
        observe_job(job.id, time.monotonic() - started, False)
        return None


def start_scheduler(runtime: ProvinceRuntime, jobs: Sequence[Job]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            run_job, "interval", minutes=job.minutes, args=[runtime, job], id=job.id, max_instances=1, coalesce=True
        )
    config = runtime.config
    if config.sync_schedule_minutes and config.national_url:
        scheduler.add_job(
            sync_job,
            "interval",
            minutes=config.sync_schedule_minutes,
            args=[runtime],
            id="sync",
            max_instances=1,
            coalesce=True,
        )
        logger.info("sync rounds scheduled every %s minutes", config.sync_schedule_minutes)
    scheduler.start()
    return scheduler
