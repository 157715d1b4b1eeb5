"""The schedulers `serve` starts: which jobs each node registers (started, inspected, shut down; no job runs),
and that building an app starts none."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from common.protection import DataKeys
from national_node import jobs as national_jobs
from national_node.app import create_app as create_national_app
from national_node.config import config_from_env as national_config
from provincial_node import areas
from provincial_node import jobs as provincial_jobs
from provincial_node.app import create_app as create_provincial_app
from provincial_node.config import config_from_env as provincial_config


def _ids(scheduler) -> set[str]:
    try:
        return {j.id for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)


def test_provincial_node_expires_requests_hourly_and_syncs_only_when_configured():
    runtime = SimpleNamespace(config=SimpleNamespace(sync_schedule_minutes=0, national_url=None))
    scheduler = provincial_jobs.start_scheduler(runtime, areas.jobs())
    assert scheduler.get_job("expiry").trigger.interval.total_seconds() == 3600
    assert _ids(scheduler) == {"expiry"}
    runtime = SimpleNamespace(config=SimpleNamespace(sync_schedule_minutes=15, national_url="http://127.0.0.1:1"))
    assert _ids(provincial_jobs.start_scheduler(runtime, areas.jobs())) == {"expiry", "sync"}


def test_national_node_expires_cross_province_requests_hourly_and_sweeps_duplicates():
    scheduler = national_jobs.start_scheduler(SimpleNamespace())
    assert scheduler.get_job("expiry").trigger.interval.total_seconds() == 3600
    assert scheduler.get_job("duplicate_sweep").trigger.interval.total_seconds() == 600
    assert _ids(scheduler) == {"expiry", "duplicate_sweep"}


def test_building_an_app_starts_no_scheduler(tmp_path):
    """Only `serve` starts the schedulers: an app built by a test, a script or a WSGI host runs no jobs."""
    before = {t.name for t in threading.enumerate()}
    env = {"TMIS_DATA_DIR": str(tmp_path), "TMIS_PROVINCE_CODE": "44", "TMIS_NATIONAL_URL": "http://127.0.0.1:1"}
    DataKeys.generate().save(provincial_config(env).data_key_file)
    apps = [create_provincial_app(provincial_config(env)), create_national_app(national_config(env))]
    started = {t.name for t in threading.enumerate()} - before
    assert not [n for n in started if "APScheduler" in n or "scheduler" in n.lower()], started
    for app in apps:
        app.extensions["tmis"].engine.dispose()
