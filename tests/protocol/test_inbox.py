"""Inbox messages: schema per kind, signature by the national message key, per-province sequence."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sync_protocol import errors as E
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.inbox import accept_inbox_message, build_inbox_message, verify_inbox_message
from tests.protocol.simulator import EPOCH, SimFederation, fixed_signer

T1, T2 = make_teacher_number("44", 7), make_teacher_number("11", 9)
BODIES = {
    "transfer_request": {
        "transfer_id": "tr-2026-0001",
        "kind": "transfer",
        "teacher_number": T1,
        "identity": {"doc_type": "1", "doc_number": "440106198803151234"},
        "from_province": "44",
        "to_province": "11",
        "from_school": None,
        "receiving_school": {"code": "2111000123", "name": "北京市第一中学"},
        "rotation": None,
        "reason": "夫妻团聚",
        "requested_at": "2026-03-01T00:00:00Z",
        "expires_at": "2026-04-01T00:00:00Z",
    },
    "transfer_answer": {
        "transfer_id": "tr-2026-0001",
        "step": "sending_school",
        "decision": "reject",
        "reason": "教学任务未完成",
        "answered_at": "2026-03-02T00:00:00Z",
    },
    "transfer_completion": {
        "transfer_id": "tr-2026-0001",
        "teacher_number": T1,
        "from_province": "44",
        "to_province": "11",
        "file_hash": "ab" * 32,
        "file": None,
        "completed_at": "2026-03-05T00:00:00Z",
    },
    "transfer_closed": {
        "transfer_id": "tr-2026-0001",
        "outcome": "expired",
        "reason": None,
        "closed_at": "2026-04-01T00:00:01Z",
    },
    "duplicate_identity": {
        "doc_type": "1",
        "teacher_numbers": [{"teacher_number": T1, "province": "44"}, {"teacher_number": T2, "province": "11"}],
        "detected_at": "2026-03-01T00:00:00Z",
    },
}


def _trust_update_body(f):
    doc = f.publish_trust()
    return {"version": 2, "envelope": json.loads(doc)}


@pytest.mark.parametrize("kind", [*BODIES, "trust_update"])
def test_every_kind_round_trips(kind):
    f = SimFederation()
    body = _trust_update_body(f) if kind == "trust_update" else BODIES[kind]
    data = build_inbox_message(province="11", seq=1, kind=kind, created_at=EPOCH, body=body, signer=f.message_signer)
    msg = accept_inbox_message(data, trust=f.trust, province="11", last_seq=0, stored_hash=lambda s: None)
    assert (msg.kind, msg.seq, msg.body) == (kind, 1, body)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("transfer_request", {"to_province": "44"}),
        ("transfer_request", {"expires_at": "2026-02-01T00:00:00Z"}),
        ("transfer_request", {"teacher_number": "4400000000010"}),
        ("transfer_answer", {"reason": None}),
        ("transfer_answer", {"step": "sending_office"}),
        ("transfer_request", {"rotation": {"type": "1", "start_month": "2026-09", "end_month": None}}),
        ("transfer_request", {"kind": "rotation_transfer"}),  # a rotation names its sending school and rotation
        ("transfer_closed", {"outcome": "completed"}),
        ("transfer_completion", {"file": {"groups": {"JBXX": {"XM": "李明"}}, "history": []}}),  # hash mismatch
        ("duplicate_identity", {"teacher_numbers": [{"teacher_number": T1, "province": "44"}]}),
        ("duplicate_identity", {"identity": {"doc_type": "1", "doc_number": "440106198803151234"}}),  # never the number
        ("transfer_completion", {"extra": 1}),
    ],
)
def test_bad_bodies_are_refused(kind, change):
    f = SimFederation()
    with pytest.raises(E.MalformedError):
        build_inbox_message(
            province="11", seq=1, kind=kind, created_at=EPOCH, body={**BODIES[kind], **change}, signer=f.message_signer
        )


def test_sequence_signature_and_destination():
    f = SimFederation()

    def msg(seq, body=BODIES["transfer_answer"], province="11", signer=None):
        return build_inbox_message(
            province=province,
            seq=seq,
            kind="transfer_answer",
            created_at=EPOCH + dt.timedelta(seconds=seq),
            body=body,
            signer=signer or f.message_signer,
        )

    one = accept_inbox_message(msg(1), trust=f.trust, province="11", last_seq=0, stored_hash=lambda s: None)
    stored = {1: one.message_hash}
    with pytest.raises(E.AlreadyAcceptedError):
        accept_inbox_message(msg(1), trust=f.trust, province="11", last_seq=1, stored_hash=stored.get)
    other = {**BODIES["transfer_answer"], "decision": "approve", "reason": None}
    with pytest.raises(E.EquivocationError):
        accept_inbox_message(msg(1, other), trust=f.trust, province="11", last_seq=1, stored_hash=stored.get)
    with pytest.raises(E.SequenceGapError):
        accept_inbox_message(msg(3), trust=f.trust, province="11", last_seq=1, stored_hash=stored.get)
    with pytest.raises(E.MalformedError, match="another province"):
        verify_inbox_message(msg(2, province="44"), f.trust, "11")
    with pytest.raises(E.SignatureError):
        verify_inbox_message(msg(2, signer=fixed_signer("impostor")), f.trust, "11")
    with pytest.raises(E.SignatureError):  # a province key cannot send inbox messages
        verify_inbox_message(msg(2, signer=f.provinces["44"].signer), f.trust, "11")
