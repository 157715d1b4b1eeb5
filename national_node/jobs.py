"""Scheduled jobs of the national node (APScheduler, started by ``tmis national serve``, never in tests): the
hourly expiry of cross-province transfer requests past their deadline (both provinces are told)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

logger = logging.getLogger(__name__)


def expiry_job(app: Flask) -> None:
    from common.db import make_session_factory, session_scope
    from national_node.services import transfers

    try:
        with session_scope(make_session_factory(app.extensions["tmis_engine"])) as s:
            ids = transfers.expire_due(s, app.extensions["tmis_keys"]())
        if ids:
            logger.info("cross-province transfer(s) expired: %s", ", ".join(ids))
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("expiring cross-province transfers failed")


def start_scheduler(app: Flask) -> Any:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(expiry_job, "interval", hours=1, args=[app], id="expiry", max_instances=1, coalesce=True)
    scheduler.start()
    app.extensions["tmis_scheduler"] = scheduler
    return scheduler
