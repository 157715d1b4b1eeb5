"""The operator's view of every province: enrolled, last sequence and version, last seen and lag, teachers,
batches, refused records, equivocations, inbox cursor (``tmis national provinces``; the dashboard to come)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from national_node.intake.models import Batch, Evidence, RefusedRecord, TeacherCore
from national_node.provinces.models import Province


def _counts(session: Session, column: Any) -> dict[str, int]:
    return dict(session.execute(select(column, func.count()).group_by(column)).all())


def province_report(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    teachers = _counts(session, TeacherCore.province_code)
    refused = _counts(session, RefusedRecord.province_code)
    batches = _counts(session, Batch.province_code)
    evidence = _counts(session, Evidence.province_code)
    return [
        {
            "code": p.code,
            "name": p.name,
            "enrolled": p.enrolled_at is not None,
            "last_seq": p.last_seq,
            "last_version": p.last_version,
            "last_seen": p.last_seen.isoformat() if p.last_seen else None,
            "lag_seconds": int((now - p.last_seen).total_seconds()) if p.last_seen else None,
            "teachers": teachers.get(p.code, 0),
            "batches": batches.get(p.code, 0),
            "refused": refused.get(p.code, 0),
            "equivocations": evidence.get(p.code, 0),
            "inbox": [p.inbox_acked, p.inbox_seq],
        }
        for p in session.scalars(select(Province).order_by(Province.code))
    ]
