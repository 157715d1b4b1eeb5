"""Scheduled jobs of the provincial node (APScheduler; never started in tests): the sync round every
TMIS_SYNC_SCHEDULE_MINUTES (default 15; 0 disables it), one at a time (max_instances=1, coalesce), and the
hourly expiry of transfer and rotation requests past their deadline."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

logger = logging.getLogger(__name__)


def make_sync_client(app: Flask) -> Any:
    from common.db import make_session_factory
    from common.keyfile import read_private_key
    from common.transport import RequestsTransport
    from provincial_node.sync import SyncClient, SyncSettings
    from sync_protocol.keys import Signer

    config = app.extensions["tmis_config"]
    factory = make_session_factory(app.extensions["tmis_engine"])
    signer = Signer.from_pem(read_private_key(config.signing_key_path))
    return SyncClient(
        factory,
        RequestsTransport(config.national_url),
        signer,
        app.extensions["tmis_catalogue"],
        SyncSettings(config.province_code, batch_size=config.sync_batch_size, push_window=config.sync_push_window),
    )


def sync_job(app: Flask) -> None:
    try:
        rnd = make_sync_client(app).run_round("schedule")
        logger.info("sync round %s: %s (%s batches, %s records)", rnd.id, rnd.status, rnd.batches, rnd.records)
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("sync round failed")


def expiry_job(app: Flask) -> None:
    from common.db import make_session_factory, session_scope
    from provincial_node.services import transfers

    try:
        with session_scope(make_session_factory(app.extensions["tmis_engine"])) as s:
            n = transfers.expire_due(s)
        if n:
            logger.info("%s transfer/rotation request(s) expired", n)
    except Exception:  # a scheduled job must log, never kill the scheduler
        logger.exception("expiring transfer requests failed")


def start_scheduler(app: Flask) -> Any | None:
    config = app.extensions["tmis_config"]
    if config.testing:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(expiry_job, "interval", hours=1, args=[app], id="expiry", max_instances=1, coalesce=True)
    if config.sync_schedule_minutes and config.national_url:
        scheduler.add_job(
            sync_job,
            "interval",
            minutes=config.sync_schedule_minutes,
            args=[app],
            id="sync",
            max_instances=1,
            coalesce=True,
        )
        logger.info("sync rounds scheduled every %s minutes", config.sync_schedule_minutes)
    scheduler.start()
    app.extensions["tmis_scheduler"] = scheduler
    return scheduler
