"""Intake of one province's batches: applied once, an identical resend answers the same receipt, a different
batch under a used sequence is equivocation kept as evidence."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, select

from common.db import utcnow
from national_node.inbox.models import RoutedMessage
from national_node.intake import intake
from national_node.intake.models import DuplicateIdentity, TeacherCore
from sync_protocol.batch import build_batch
from sync_protocol.errors import EquivocationError
from tests.protocol.simulator import sample_record


def test_a_batch_applies_once_and_its_resend_gets_the_same_receipt(nation):
    s = nation.session
    signer = nation.enrol("44")
    first = nation.batch(signer, 1, (1, 2))
    applied = intake.intake(s, nation.keys, nation.origin, "44", first.data)
    again = intake.intake(s, nation.keys, nation.origin, "44", first.data)
    assert applied.new and not again.new and again.receipt == applied.receipt
    assert s.get(TeacherCore, sample_record("44", 1).teacher_number).version == 1
    other = nation.batch(signer, 1, (1, 2, 3))
    with pytest.raises(EquivocationError):
        intake.intake(s, nation.keys, nation.origin, "44", other.data)
    assert [e.offered_batch_hash for e in intake.list_evidence(s)] == [other.batch_hash]


def test_the_sweep_notifies_a_duplicate_that_concurrent_intakes_could_not_see(nation):
    """Two provinces sending the same identity at the same moment: neither intake sees the other's uncommitted
    row. Simulated by removing what the second intake found; the sweep finds and notifies it, once."""
    s = nation.session
    signers = {p: nation.enrol(p) for p in ("44", "11")}
    r44 = sample_record("44", 1)
    records = {"44": r44, "11": sample_record("11", 1)._replace(fields=r44.fields)}
    for p, record in records.items():
        batch = build_batch(
            province=p,
            seq=1,
            prev_batch_hash=None,
            created_at=utcnow(),
            schema_version="test",
            log_origin=nation.origin,
            records=[record],
            signer=signers[p],
        )
        intake.intake(s, nation.keys, nation.origin, p, batch.data)
    assert len(intake.list_duplicates(s)) == 1  # found by the second intake (sequential here)
    s.execute(delete(DuplicateIdentity))
    s.execute(delete(RoutedMessage).where(RoutedMessage.kind == "duplicate_identity"))
    assert intake.sweep_duplicates(s, nation.keys, since=utcnow() + dt.timedelta(hours=1)) == 0  # outside the window
    assert intake.sweep_duplicates(s, nation.keys) == 1
    (d,) = intake.list_duplicates(s)
    assert {(d.teacher_number_a, d.province_a), (d.teacher_number_b, d.province_b)} == {
        (r.teacher_number, p) for p, r in records.items()
    }
    told = s.scalars(select(RoutedMessage.province_code).where(RoutedMessage.kind == "duplicate_identity")).all()
    assert sorted(told) == ["11", "44"]
    assert intake.sweep_duplicates(s, nation.keys) == 0  # never notified twice
