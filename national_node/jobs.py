"""Scheduled jobs of the national node (APScheduler, started only by ``tmis national serve``, in the supervising
process when it runs several workers): the hourly expiry of cross-province transfer requests past their deadline
(both provinces are told), and every ten minutes the sweep for duplicate identities that two concurrent intakes
could not see (:func:`national_node.intake.intake.sweep_duplicates`)."""

from __future__ import annotations

import datetime as dt
import logging
import time

from apscheduler.schedulers.background import BackgroundScheduler

from common.db import session_scope, utcnow
from common.metrics import observe_job
from national_node.intake import intake
from national_node.runtime import NationalRuntime
from national_node.transfers import broker

logger = logging.getLogger(__name__)


def expiry_job(runtime: NationalRuntime) -> None:
    started, ok = time.monotonic(), False
    try:
        with session_scope(runtime.session_factory) as s:
            ids = broker.expire_due(s, runtime.keys())
        if ids:
            logger.info("cross-province transfer(s) expired: %s", ", ".join(ids))
        ok = True
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("expiring cross-province transfers failed")
    finally:
        observe_job("expiry", time.monotonic() - started, ok)


def duplicate_sweep_job(runtime: NationalRuntime) -> None:
    started, ok = time.monotonic(), False
    try:
        with session_scope(runtime.session_factory) as s:
            found = intake.sweep_duplicates(s, runtime.keys(), since=utcnow() - dt.timedelta(hours=1))
        if found:
            logger.info("duplicate identities found by the sweep: %d", found)
        ok = True
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("the duplicate-identity sweep failed")
    finally:
        observe_job("duplicate_sweep", time.monotonic() - started, ok)


def start_scheduler(runtime: NationalRuntime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(expiry_job, "interval", hours=1, args=[runtime], id="expiry", max_instances=1, coalesce=True)
    scheduler.add_job(
        duplicate_sweep_job,
        "interval",
        minutes=10,
        args=[runtime],
        id="duplicate_sweep",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
