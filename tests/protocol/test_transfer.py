"""Province-signed transfer messages and the shared transfer state machine (sync_protocol.transfer)."""

from __future__ import annotations

import datetime as dt

import pytest

from sync_protocol import errors as E
from sync_protocol import transfer as tr
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.keys import Signer
from tests.protocol.simulator import EPOCH, SimFederation

T1 = make_teacher_number("44", 7)
REQUEST = {
    "transfer_id": "11-1-abcd",
    "kind": "transfer",
    "teacher_number": T1,
    "identity": {"doc_type": "1", "doc_number": "440106198803151234"},
    "from_province": "44",
    "to_province": "11",
    "from_school": None,
    "receiving_school": {"code": "2111000001", "name": "实验小学"},
    "rotation": None,
    "reason": "夫妻团聚",
    "requested_at": "2026-03-01T00:00:00Z",
    "expires_at": "2026-04-01T00:00:00Z",
}
FILE = {"groups": {"JBXX": {"XM": "李明"}}, "history": [{"at": "2026-01-01T00:00:00Z", "action": "register"}]}


def msg(province, kind, body, at=EPOCH):
    return tr.parse_transfer_payload(tr.transfer_payload(province=province, kind=kind, created_at=at, body=body))


def answer(step, decision="approve", reason=None):
    return {
        "transfer_id": "11-1-abcd",
        "step": step,
        "decision": decision,
        "reason": reason,
        "answered_at": "2026-03-02T00:00:00Z",
    }


FILE_BODY = {
    "transfer_id": "11-1-abcd",
    "teacher_number": T1,
    "file": FILE,
    "file_hash": tr.file_hash(FILE),
    "sent_at": "2026-03-03T00:00:00Z",
}
NOW = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def test_signed_by_the_sending_province_only():
    f = SimFederation()
    payload = tr.transfer_payload(province="11", kind="transfer_request", created_at=EPOCH, body=REQUEST)
    data = tr.sign_transfer_message(payload, f.provinces["11"].signer)
    m = tr.verify_transfer_message(data, f.trust, "11")
    assert (m.kind, m.province, m.transfer_id) == ("transfer_request", "11", "11-1-abcd")
    assert tr.sign_transfer_message(payload, f.provinces["11"].signer) == data  # deterministic: resend = same bytes
    with pytest.raises(E.SignatureError):  # province 44's key does not speak for 11
        tr.verify_transfer_message(tr.sign_transfer_message(payload, f.provinces["44"].signer), f.trust, "11")
    with pytest.raises(E.KeyUntrustedError):
        tr.verify_transfer_message(data, f.trust, "45")  # no keys listed for 45
    stranger = tr.sign_transfer_message(payload, Signer.generate())
    with pytest.raises(E.SignatureError):
        tr.verify_transfer_message(stranger, f.trust, "11")


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("transfer_request", {**REQUEST, "to_province": "44"}),
        ("transfer_request", {**REQUEST, "kind": "secondment"}),
        ("transfer_request", {**REQUEST, "transfer_id": "-bad"}),
        ("transfer_answer", answer("sending_school", "reject", None)),
        ("transfer_file", {**FILE_BODY, "file_hash": "00" * 32}),
        ("transfer_file", {**FILE_BODY, "file": {"groups": {}, "history": []}}),
        ("transfer_withdrawal", {"transfer_id": "11-1-abcd", "withdrawn_at": "2026-03-02T00:00:00Z"}),
    ],
)
def test_bad_bodies_are_refused(kind, body):
    with pytest.raises(E.MalformedError):
        tr.transfer_payload(province="11", kind=kind, created_at=EPOCH, body=body)


def test_a_transfer_runs_request_answers_file():
    s = tr.start(msg("11", "transfer_request", REQUEST))
    assert (s.state, s.next_step, s.starter, s.decider) == ("open", "sending_school", "11", "44")
    s = tr.advance(s, msg("44", "transfer_answer", answer("sending_school")), NOW)
    assert s.next_step == "sending_bureau"
    s = tr.advance(s, msg("44", "transfer_answer", answer("sending_bureau")), NOW)
    assert (s.state, s.next_step) == ("awaiting_file", None)
    s = tr.advance(s, msg("44", "transfer_file", FILE_BODY), NOW + dt.timedelta(days=60))  # no expiry now
    assert s.state == "completed"


def test_out_of_order_wrong_sender_and_closed_are_refused():
    s = tr.start(msg("11", "transfer_request", REQUEST))
    with pytest.raises(tr.TransferStateError):  # B may not decide A's step
        tr.advance(s, msg("11", "transfer_answer", answer("sending_school")), NOW)
    with pytest.raises(tr.TransferStateError):  # skipping a step
        tr.advance(s, msg("44", "transfer_answer", answer("sending_bureau")), NOW)
    with pytest.raises(tr.TransferStateError):  # the file before the approvals
        tr.advance(s, msg("44", "transfer_file", FILE_BODY), NOW)
    with pytest.raises(tr.TransferStateError):  # a third province
        tr.advance(s, msg("45", "transfer_answer", answer("sending_school")), NOW)
    with pytest.raises(tr.TransferStateError):  # A may not start B's request
        tr.start(msg("44", "transfer_request", REQUEST))
    rejected = tr.advance(s, msg("44", "transfer_answer", answer("sending_school", "reject", "不同意")), NOW)
    assert rejected.state == "rejected"
    with pytest.raises(tr.TransferStateError):
        tr.advance(rejected, msg("44", "transfer_answer", answer("sending_bureau")), NOW)


def test_withdrawal_only_by_the_starter_before_the_last_step_and_expiry():
    s = tr.start(msg("11", "transfer_request", REQUEST))
    w = {"transfer_id": "11-1-abcd", "reason": "另有安排", "withdrawn_at": "2026-03-02T00:00:00Z"}
    with pytest.raises(tr.TransferStateError):
        tr.advance(s, msg("44", "transfer_withdrawal", w), NOW)
    assert tr.advance(s, msg("11", "transfer_withdrawal", w), NOW).state == "withdrawn"
    last = tr.advance(s, msg("44", "transfer_answer", answer("sending_school")), NOW)
    with pytest.raises(tr.TransferStateError):
        tr.advance(last, msg("11", "transfer_withdrawal", w), NOW)
    late = dt.datetime(2026, 4, 2, tzinfo=dt.UTC)
    assert tr.expired(s, late) and not tr.expired(s, NOW)
    with pytest.raises(tr.TransferStateError):
        tr.advance(s, msg("44", "transfer_answer", answer("sending_school")), late)


def test_rotation_flow_is_started_by_the_sending_province():
    rot = {
        **REQUEST,
        "kind": "rotation_transfer",
        "from_school": {"code": "2144000001", "name": "实验小学"},
        "rotation": {"type": "1", "start_month": "2026-09", "end_month": None},
    }
    s = tr.start(msg("44", "transfer_request", rot))
    assert (s.starter, s.decider, s.next_step) == ("44", "11", "receiving_school")
    s = tr.advance(s, msg("11", "transfer_answer", answer("receiving_school")), NOW)
    s = tr.advance(s, msg("11", "transfer_answer", answer("receiving_bureau")), NOW)
    assert s.state == "awaiting_file"
    with pytest.raises(tr.TransferStateError):  # the file comes from the province holding the teacher
        tr.advance(s, msg("11", "transfer_file", FILE_BODY), NOW)
    assert tr.advance(s, msg("44", "transfer_file", FILE_BODY), NOW).state == "completed"
