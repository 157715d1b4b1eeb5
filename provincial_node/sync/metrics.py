"""What the province's ``/metrics`` and ``/health/ready`` say about its sync with the national node, read from
the sync tables at scrape time (rounds run by ``serve`` and by ``tmis province sync run`` alike)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from common.db import utcnow
from common.metrics import Check, DatabaseCollector
from provincial_node.context import ProvinceRuntime
from provincial_node.sync import status as sync_status
from provincial_node.sync.keys import KeyRing
from provincial_node.sync.models import (
    BatchStatus,
    OutboxEntry,
    ParkedRecord,
    SyncBatch,
    SyncRound,
    TrustDoc,
)
from provincial_node.sync.trust import trust_chain


def _ts(t: dt.datetime | None) -> float:
    if t is None:
        return 0.0
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _read(runtime: ProvinceRuntime) -> Iterable[Any]:
    now = utcnow()
    with runtime.session_factory() as s:
        rounds = CounterMetricFamily("tmis_sync_rounds", "Sync rounds recorded, by status", labels=["status"])
        for status, n in s.execute(select(SyncRound.status, func.count()).group_by(SyncRound.status)):
            rounds.add_metric([status], n)
        yield rounds
        last = s.scalar(
            select(SyncRound).where(SyncRound.finished_at.is_not(None)).order_by(SyncRound.id.desc()).limit(1)
        )
        phases = GaugeMetricFamily(
            "tmis_sync_last_round_phase_seconds", "Seconds per phase of the last finished round", labels=["phase"]
        )
        for phase, seconds in ((last.timings or {}) if last else {}).items():
            phases.add_metric([phase], float(seconds))
        yield phases
        yield GaugeMetricFamily(
            "tmis_sync_last_round_finished_timestamp_seconds", "When the last round finished", value=_ts(
                last.finished_at if last else None
            )
        )  # fmt: skip
        ok = s.scalar(select(func.max(SyncRound.finished_at)).where(SyncRound.status == "ok"))
        yield GaugeMetricFamily(
            "tmis_sync_last_ok_round_timestamp_seconds", "When the last round that ended ok finished", value=_ts(ok)
        )
        st = sync_status.status(s)
        for key in ("outbox_pending", "batches_unsent", "parked_records", "inbox_unprocessed"):
            yield GaugeMetricFamily(f"tmis_sync_{key}", f"sync status: {key.replace('_', ' ')}", value=st[key])
        done = s.scalar(
            select(func.coalesce(func.max(SyncBatch.version_to), 0)).where(SyncBatch.status == BatchStatus.ACCEPTED)
        )
        oldest = s.scalar(select(func.min(OutboxEntry.created_at)).where(OutboxEntry.version > done))
        yield GaugeMetricFamily(
            "tmis_sync_data_lag_seconds",
            "Age of the oldest change the national node has not accepted yet (0: none waiting)",
            value=max(0.0, now.timestamp() - _ts(oldest)) if oldest else 0.0,
        )
        accepted = s.execute(
            select(func.count(), func.coalesce(func.sum(SyncBatch.version_to - SyncBatch.version_from + 1), 0)).where(
                SyncBatch.status == BatchStatus.ACCEPTED
            )
        ).one()
        yield CounterMetricFamily("tmis_sync_batches_accepted", "Batches the national node accepted", value=accepted[0])
        yield CounterMetricFamily("tmis_sync_records_accepted", "Records in accepted batches", value=accepted[1])
        refused = CounterMetricFamily(
            "tmis_sync_records_refused", "Records the national node refused (parked), by reason", labels=["reason"]
        )
        for reason, n in s.execute(select(ParkedRecord.reason, func.count()).group_by(ParkedRecord.reason)):
            refused.add_metric([reason], n)
        yield refused
        if s.scalar(select(TrustDoc.version).limit(1)) is not None:
            trust = trust_chain(s)[-1]
            yield GaugeMetricFamily("tmis_trust_version", "Newest verified trust version", value=trust.version)
            yield GaugeMetricFamily(
                "tmis_trust_expires_timestamp_seconds",
                "When the newest trust version expires",
                value=_ts(trust.expires),
            )


def collector(runtime: ProvinceRuntime) -> DatabaseCollector:
    return DatabaseCollector("province_sync", lambda: _read(runtime))


def checks(runtime: ProvinceRuntime) -> list[Check]:
    """Readiness of the sync: a signing key, enrolment, unexpired trust that lists one of the node's keys."""
    config = runtime.config

    def trust_state() -> tuple[Any, str | None]:
        with runtime.session_factory() as s:
            if s.scalar(select(TrustDoc.version).limit(1)) is None:
                return None, "not enrolled at the national node: `tmis province sync enrol --token …`"
            return trust_chain(s)[-1], None

    def signing_key() -> str | None:
        try:
            ring = KeyRing.load(config.signing_key_path)
        except Exception:  # the reason is the operator's to read in the log, not the caller's
            return "the signing key file is missing, unreadable or readable by others"
        if not ring.signers:
            return "the signing key file is missing"
        trust, _not_enrolled = trust_state()
        if trust is not None and config.province_code and not ring.listed(trust, config.province_code):
            return "the newest trust version lists none of this node's keys: `tmis province keys rotate --token …`"
        return None

    def enrolled() -> str | None:
        return trust_state()[1]

    def trust_unexpired() -> str | None:
        trust, why = trust_state()
        if trust is None:
            return why
        return "the trust metadata has expired: the national node must renew it" if trust.expires <= utcnow() else None

    if not config.national_url:
        return [Check("signing_key", signing_key)]
    return [Check("signing_key", signing_key), Check("enrolled", enrolled), Check("trust", trust_unexpired)]
