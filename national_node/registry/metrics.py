"""What the national node's ``/metrics`` and ``/health/ready`` say: per province its chain position, data lag,
batches and records accepted and refused (by reason), equivocations; the trust version and its expiry; the
log's size — read from the node's tables at scrape time. Batches refused before anything is stored are
counted by the request that refused them (``tmis_intake_refused_total``, :mod:`national_node.api`)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from common.db import utcnow
from common.keyfile import read_private_key
from common.metrics import Check, DatabaseCollector
from national_node.intake.models import Batch, Evidence, RefusedRecord
from national_node.keys import key_files
from national_node.ledger import ledger
from national_node.ledger.models import LogLeaf
from national_node.provinces.models import Province
from national_node.runtime import NationalRuntime

logger = logging.getLogger(__name__)


def _ts(t: dt.datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _read(runtime: NationalRuntime) -> Iterable[Any]:
    now = utcnow()
    with runtime.session_factory() as s:
        seq = GaugeMetricFamily("tmis_province_last_seq", "Last accepted batch sequence", labels=["province"])
        version = GaugeMetricFamily("tmis_province_last_version", "Last accepted record version", labels=["province"])
        lag = GaugeMetricFamily(
            "tmis_province_data_lag_seconds", "Seconds since the province's last batch request", labels=["province"]
        )
        for p in s.scalars(select(Province).where(Province.enrolled_at.is_not(None)).order_by(Province.code)):
            seq.add_metric([p.code], p.last_seq)
            version.add_metric([p.code], p.last_version)
            if p.last_seen is not None:
                lag.add_metric([p.code], max(0.0, now.timestamp() - _ts(p.last_seen)))
        yield from (seq, version, lag)
        batches = CounterMetricFamily("tmis_intake_batches_accepted", "Batches accepted", labels=["province"])
        records = CounterMetricFamily(
            "tmis_intake_records_accepted", "Records in accepted batches, less the refused", labels=["province"]
        )
        stmt = select(Batch.province_code, func.count(), func.sum(Batch.record_count - Batch.refused_count)).group_by(
            Batch.province_code
        )
        for code, n, applied in s.execute(stmt):
            batches.add_metric([code], n)
            records.add_metric([code], applied or 0)
        yield from (batches, records)
        refused = CounterMetricFamily(
            "tmis_intake_records_refused", "Records refused, by reason", labels=["province", "reason"]
        )
        stmt = select(RefusedRecord.province_code, RefusedRecord.reason, func.count()).group_by(
            RefusedRecord.province_code, RefusedRecord.reason
        )
        for code, reason, n in s.execute(stmt):
            refused.add_metric([code, reason], n)
        yield refused
        evidence = CounterMetricFamily("tmis_equivocations", "Equivocation evidence stored", labels=["province"])
        for code, n in s.execute(select(Evidence.province_code, func.count()).group_by(Evidence.province_code)):
            evidence.add_metric([code], n)
        yield evidence
        yield GaugeMetricFamily(
            "tmis_log_size", "Leaves in the acceptance log", value=s.scalar(select(func.count()).select_from(LogLeaf))
        )
        trust = ledger.current_trust(s)
        yield GaugeMetricFamily("tmis_trust_version", "Trust version in force", value=trust.version)
        yield GaugeMetricFamily(
            "tmis_trust_expires_timestamp_seconds", "When the trust version in force expires", value=_ts(trust.expires)
        )


def collector(runtime: NationalRuntime) -> DatabaseCollector:
    return DatabaseCollector("national", lambda: _read(runtime))


def checks(runtime: NationalRuntime) -> list[Check]:
    def node_keys() -> str | None:
        try:  # the files themselves (the loaded keys are cached for the process's lifetime)
            for path in key_files(runtime.keys_dir).values():
                read_private_key(path)
        except Exception:  # the operator log has the reason
            logger.exception("readiness: node key files")
            return "the node's key files are missing or unreadable"
        return None

    def trust_unexpired() -> str | None:
        with runtime.session_factory() as s:
            try:
                trust = ledger.current_trust(s)
            except Exception:  # not initialised
                return "no trust metadata: `tmis national init`"
        return "the trust metadata has expired: `tmis national trust renew`" if trust.expires <= utcnow() else None

    return [Check("keys", node_keys), Check("trust", trust_unexpired)]
