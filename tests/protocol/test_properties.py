"""Hypothesis: any single-bit change to a signed envelope (batch file) or a receipt makes verification fail."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol.errors import ProtocolError
from sync_protocol.log import verify_receipt
from sync_protocol.verifier import ProvinceState, accept_batch
from tests.protocol.simulator import EPOCH, LOG_ORIGIN, SimFederation

FED = SimFederation()
BATCH = FED.provinces["44"].next_batch(3)
RECEIPT = FED.submit("44", BATCH.data).to_bytes()
NOW = EPOCH + dt.timedelta(days=1)


def _flip(data: bytes, bit: int) -> bytes:
    i, b = divmod(bit, 8)
    return data[:i] + bytes([data[i] ^ (1 << b)]) + data[i + 1 :]


def _batch_verifies(data: bytes) -> bool:
    try:
        accept_batch(
            data, province="44", trust=FED.trust, state=ProvinceState("44"), stored_batch_hash=lambda s: None, now=NOW
        )
        return True
    except ProtocolError:
        return False


def _receipt_verifies(data: bytes) -> bool:
    try:
        verify_receipt(data, origin=LOG_ORIGIN, log_keys=FED.trust.log_keys)
        return True
    except ProtocolError:
        return False


def test_the_unmodified_inputs_verify():
    assert _batch_verifies(BATCH.data)
    assert _receipt_verifies(RECEIPT)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(BATCH.data) * 8 - 1))
def test_any_single_bit_flip_in_a_batch_file_fails(bit):
    assert not _batch_verifies(_flip(BATCH.data, bit))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(RECEIPT) * 8 - 1))
def test_any_single_bit_flip_in_a_receipt_fails(bit):
    assert not _receipt_verifies(_flip(RECEIPT, bit))
