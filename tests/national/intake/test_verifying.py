"""Batch verification in worker processes (``TMIS_VERIFY_WORKERS``): the same verified batch and the same
errors as verifying in the request's own process; the decoded records of verified lines equal the verified
records; the intake applies through the pool."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from national_node.config import config_from_env, default_verify_workers
from national_node.intake import intake, verifying
from national_node.intake.models import TeacherCore
from national_node.ledger import ledger
from sync_protocol.batch import split_batch_file, verify_batch
from sync_protocol.errors import MalformedError, ProtocolError
from sync_protocol.records import records_of_verified_lines
from tests.protocol.simulator import sample_record


def test_decoding_verified_lines_gives_the_verified_records(nation):
    signer = nation.enrol("44")
    trust = ledger.current_trust(nation.session)
    for options in ({}, {"op": "status_change"}, {"op": "transfer_out", "to_province": "11"}):
        built = nation.batch(signer, 1, range(1, 40), **options)
        verified = verify_batch(built.data, trust, "44")
        assert records_of_verified_lines(split_batch_file(built.data)[1]) == list(verified.records)


def test_the_variable_sets_the_workers_for_serve():
    assert config_from_env({}).verify_workers == default_verify_workers()
    assert [default_verify_workers(n) for n in (1, 2, 3, 4, 8, 64)] == [0, 0, 1, 2, 4, 4]
    assert config_from_env({"TMIS_VERIFY_WORKERS": "3"}).verify_workers == 3
    assert config_from_env({"TMIS_VERIFY_WORKERS": "0"}).verify_workers == 0
    with pytest.raises(ConfigError, match="TMIS_VERIFY_WORKERS"):
        config_from_env({"TMIS_VERIFY_WORKERS": "-1"})


@pytest.fixture
def pool():
    verifying.configure(2)
    yield
    verifying.configure(0)


@pytest.mark.slow
def test_workers_verify_exactly_as_the_request_process_does(nation, pool):
    signer = nation.enrol("44")
    trust = ledger.current_trust(nation.session)
    built = nation.batch(signer, 1, range(1, 300))
    assert verifying.verify(built.data, trust, "44") == verify_batch(built.data, trust, "44")
    # a record changed after signing: refused with the very error the in-process check raises
    tampered = built.data.replace("教师7".encode(), "教师8".encode(), 1)
    with pytest.raises(MalformedError) as here:
        verify_batch(tampered, trust, "44")
    with pytest.raises(MalformedError) as there:
        verifying.verify(tampered, trust, "44")
    assert (there.value.message, there.value.details) == (here.value.message, here.value.details)
    # another province's keys: refused the same way
    with pytest.raises(ProtocolError) as other:
        verifying.verify(built.data, trust, "11")
    with pytest.raises(type(other.value)):
        verify_batch(built.data, trust, "11")


@pytest.mark.slow
def test_the_intake_applies_batches_verified_by_the_workers(nation, pool):
    signer = nation.enrol("44")
    first = nation.batch(signer, 1, (1, 2, 3))
    second = nation.batch(signer, 2, (4, 5), prev=first.batch_hash)
    for b in (first, second):
        assert intake.intake(nation.session, nation.keys, nation.origin, "44", b.data).new
    assert nation.session.get(TeacherCore, sample_record("44", 5).teacher_number).version == 5
