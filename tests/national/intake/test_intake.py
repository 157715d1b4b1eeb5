"""Intake of one province's batches: applied once, an identical resend answers the same receipt, a different
batch under a used sequence is equivocation kept as evidence."""

from __future__ import annotations

import pytest

from common.db import utcnow
from national_node.intake import intake
from national_node.intake.models import TeacherCore
from sync_protocol.batch import build_batch
from sync_protocol.errors import EquivocationError
from tests.protocol.simulator import sample_record


def _batch(nation, signer, seq, versions, prev=None):
    return build_batch(
        province="44",
        seq=seq,
        prev_batch_hash=prev,
        created_at=utcnow(),
        schema_version="test",
        log_origin=nation.origin,
        records=[sample_record("44", v) for v in versions],
        signer=signer,
    )


def test_a_batch_applies_once_and_its_resend_gets_the_same_receipt(nation):
    s = nation.session
    signer = nation.enrol("44")
    first = _batch(nation, signer, 1, (1, 2))
    applied = intake.intake(s, nation.keys, nation.origin, "44", first.data)
    again = intake.intake(s, nation.keys, nation.origin, "44", first.data)
    assert applied.new and not again.new and again.receipt == applied.receipt
    assert s.get(TeacherCore, sample_record("44", 1).teacher_number).version == 1
    other = _batch(nation, signer, 1, (1, 2, 3))
    with pytest.raises(EquivocationError):
        intake.intake(s, nation.keys, nation.origin, "44", other.data)
    assert [e.offered_batch_hash for e in intake.list_evidence(s)] == [other.batch_hash]
