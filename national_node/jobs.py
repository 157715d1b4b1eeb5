"""Scheduled jobs of the national node (APScheduler, started only by ``tmis national serve``): the hourly
expiry of cross-province transfer requests past their deadline (both provinces are told)."""

from __future__ import annotations

import logging
import time

from apscheduler.schedulers.background import BackgroundScheduler

from common.db import session_scope
from common.metrics import observe_job
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


def start_scheduler(runtime: NationalRuntime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(expiry_job, "interval", hours=1, args=[runtime], id="expiry", max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
