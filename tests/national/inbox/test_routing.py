"""Messages routed to a province: signed by the message key, gapless per province, pulled after a cursor,
acknowledged no further than sent."""

from __future__ import annotations

import pytest

from common.errors import ValidationError
from national_node.inbox import routing
from national_node.ledger import ledger
from national_node.provinces import provinces
from sync_protocol.inbox import accept_inbox_message


def test_each_province_has_its_own_gapless_signed_sequence(nation):
    s, keys = nation.session, nation.keys
    nation.enrol("44")
    nation.enrol("11")
    start = {p: routing.sequence(s, keys, p) for p in ("11", "44")}  # the enrolments' trust updates
    for kind, p in (("transfer_closed", "44"), ("transfer_closed", "11"), ("transfer_closed", "44")):
        body = {"transfer_id": "44-1-abcd", "outcome": "expired", "reason": None, "closed_at": "2026-12-01T00:00:00Z"}
        routing.route(s, keys, p, kind, body)
    got = routing.pull(s, keys, "44", start["44"])
    assert [m.seq for m in got] == [start["44"] + 1, start["44"] + 2]
    trust = ledger.current_trust(s)
    last = start["44"]
    for m in got:
        msg = accept_inbox_message(m.envelope, trust=trust, province="44", last_seq=last, stored_hash=lambda q: None)
        last = msg.seq
    assert routing.pull(s, keys, "11", start["11"])[0].seq == start["11"] + 1


def test_pull_and_ack_bounds(nation):
    s, keys = nation.session, nation.keys
    nation.enrol("44")
    routing.sequence(s, keys, "44")
    sent = provinces.get(s, "44").inbox_seq
    with pytest.raises(ValidationError):
        routing.pull(s, keys, "44", 0, limit=0)
    with pytest.raises(ValidationError) as exc:
        routing.ack(s, keys, "44", sent + 1)
    assert exc.value.details["errors"][0]["field"] == "seq"
    assert routing.ack(s, keys, "44", sent) == sent
    assert routing.ack(s, keys, "44", 0) == sent  # never moves back
