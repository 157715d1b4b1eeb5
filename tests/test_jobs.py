"""The schedulers `serve` starts: which jobs each node registers (started, inspected, shut down; no job runs)."""

from __future__ import annotations

from types import SimpleNamespace

from national_node import jobs as national_jobs
from provincial_node import jobs as provincial_jobs


def _ids(scheduler) -> set[str]:
    try:
        return {j.id for j in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)


def test_provincial_node_expires_requests_hourly_and_syncs_only_when_configured():
    config = SimpleNamespace(testing=False, sync_schedule_minutes=0, national_url=None)
    assert _ids(provincial_jobs.start_scheduler(SimpleNamespace(extensions={"tmis_config": config}))) == {"expiry"}
    config = SimpleNamespace(testing=False, sync_schedule_minutes=15, national_url="http://127.0.0.1:1")
    app = SimpleNamespace(extensions={"tmis_config": config})
    assert _ids(provincial_jobs.start_scheduler(app)) == {"expiry", "sync"}
    testing = SimpleNamespace(extensions={"tmis_config": SimpleNamespace(testing=True)})
    assert provincial_jobs.start_scheduler(testing) is None


def test_national_node_expires_cross_province_requests_hourly():
    scheduler = national_jobs.start_scheduler(SimpleNamespace(extensions={}))
    job = scheduler.get_job("expiry")
    assert job.trigger.interval.total_seconds() == 3600
    assert _ids(scheduler) == {"expiry"}
