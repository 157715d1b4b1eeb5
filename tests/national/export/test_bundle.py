"""The audit bundle the exporter writes is the one the auditor reads (one layout, sync_protocol.bundle)."""

from __future__ import annotations

import pytest

from common.db import utcnow
from common.errors import ValidationError
from national_node.export.bundle import export_bundle
from national_node.intake import intake
from sync_protocol.audit import audit_bundle
from sync_protocol.batch import build_batch
from tests.protocol.simulator import sample_record


def test_an_exported_bundle_passes_the_auditor_and_an_occupied_directory_is_refused(nation, tmp_path):
    s = nation.session
    signer = nation.enrol("44")
    built = build_batch(
        province="44",
        seq=1,
        prev_batch_hash=None,
        created_at=utcnow(),
        schema_version="test",
        log_origin=nation.origin,
        records=[sample_record("44", v) for v in (1, 2, 3)],
        signer=signer,
    )
    assert intake.intake(s, nation.keys, nation.origin, "44", built.data).new
    done = export_bundle(s, nation.keys, nation.origin, tmp_path / "bundle")
    assert (done.batches, done.messages) == (1, 0) and done.leaves >= 3
    report = audit_bundle(tmp_path / "bundle")
    assert report.ok, [f.to_json() for f in report.findings if not f.ok]
    with pytest.raises(ValidationError):
        export_bundle(s, nation.keys, nation.origin, tmp_path / "bundle")
