"""A federation in one process: the national app behind a test-client transport, two provinces with their
own databases (SQLite or PostgreSQL), everything initialised through the real CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from common.db import make_session_factory, utcnow
from common.http import runtime_of
from national_node.intake.intake import record_at
from national_node.intake.models import Batch, DuplicateIdentity, TeacherCore, TeacherCoreHistory
from national_node.ledger.models import LogLeaf
from national_node.provinces.models import Province
from provincial_node.sync.models import InboxReceived, SyncBatch
from sync_protocol.batch import build_batch, read_header
from sync_protocol.records import CoreRecord, parse_record
from tests.integration.federation import FlaskTransport, cli, effective_teacher, make_national, make_province


@pytest.fixture
def federation(tmp_path, database_url_factory):
    app, env = make_national(tmp_path, database_url_factory("nat"))
    app.extensions["test_env"] = env  # for tests that run `tmis national …`
    transport = FlaskTransport(app)
    p44 = make_province(tmp_path, database_url_factory("p44"), "44", transport, env)
    p11 = make_province(tmp_path, database_url_factory("p11"), "11", transport, env)
    national = make_session_factory(runtime_of(app).engine)
    yield app, transport, p44, p11, national
    runtime_of(app).engine.dispose()
    for node in (p44, p11):
        node.factory.kw["bind"].dispose()


def test_reviewed_teachers_reach_the_national_node_with_exactly_the_core_fields(federation):
    app, transport, p44, p11, national = federation
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(1, 4)]
    rnd = p44.client.run_round()
    assert rnd.status == "ok", rnd.errors
    assert (rnd.batches, rnd.records) == (1, 3)
    with national() as s:
        rows = {t.teacher_number: t for t in s.scalars(select(TeacherCore))}
        assert set(rows) == set(numbers)
        core = rows[numbers[0]]
        assert core.province_code == "44"
        assert "JBDY" not in core.fields and "JBDY.JBGZ" in core.withheld  # wages stayed home
        assert core.fields["JBXX"]["XM"] == "教师001"
        assert s.get(Province, "44").last_seq == 1
    again = p44.client.run_round()
    assert (again.status, again.batches) == ("ok", 0)


def test_resumes_after_a_lost_answer_without_duplicates(federation):
    app, transport, p44, p11, national = federation
    effective_teacher(p44, "010")
    # the batch is built and sent, but every answer is "lost": the round fails, the batch stays "built"
    transport.fail_next = 100
    rnd = p44.client.run_round()
    assert rnd.status == "failed"
    transport.fail_next = 0
    with p44.factory() as s:
        assert s.scalar(select(SyncBatch.status)) == "built"
    assert p44.client.run_round().status == "ok"
    with national() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 1
        assert s.scalar(select(func.count()).select_from(TeacherCore)) == 1


def test_retries_transient_failures_within_a_round(federation):
    app, transport, p44, p11, national = federation
    effective_teacher(p44, "011")
    transport.fail_next = 2  # two network errors, then success: backoff retries inside the round
    assert p44.client.run_round().status == "ok"


def test_duplicate_identity_across_provinces_notifies_both(federation):
    app, transport, p44, p11, national = federation
    effective_teacher(p44, "020")
    effective_teacher(p11, "020")  # same resident ID number, registered again in Beijing
    assert p44.client.run_round().status == "ok"
    assert p11.client.run_round().status == "ok"
    assert p44.client.run_round().status == "ok"  # pulls its notice
    with national() as s:
        assert s.scalar(select(func.count()).select_from(DuplicateIdentity)) == 1
    for node in (p44, p11):
        with node.factory() as s:
            (msg,) = s.scalars(select(InboxReceived).where(InboxReceived.kind == "duplicate_identity")).all()
            assert {e["province"] for e in msg.body["teacher_numbers"]} == {"11", "44"}


def test_an_offline_province_catches_up(federation):
    app, transport, p44, p11, national = federation
    for n in range(30, 36):
        effective_teacher(p44, f"{n:03d}")
        if n % 2:
            transport.fail_next = 1000  # offline for this "round"
            assert p44.client.run_round().status == "failed"
            transport.fail_next = 0
    p44.client.settings = p44.client.settings.__class__("44", batch_size=2, sleep=lambda s: None)
    assert p44.client.run_round().status == "ok"
    with national() as s:
        assert s.scalar(select(func.count()).select_from(TeacherCore)) == 6
        assert s.get(Province, "44").last_version == 6
        assert s.scalar(select(func.count()).select_from(LogLeaf)) >= 2


def test_a_refused_record_is_parked_and_does_not_block(federation):
    from provincial_node.db import next_value
    from provincial_node.sync import outbox
    from provincial_node.sync.models import OutboxEntry, ParkedRecord
    from provincial_node.teacher_files.models import Teacher
    from sync_protocol.records import CoreRecord

    app, transport, p44, p11, national = federation
    number44 = effective_teacher(p44, "040")
    assert p44.client.run_round().status == "ok"
    # province 11 claims 44's teacher (a bug, or a transfer the national node does not know about)
    effective_teacher(p11, "041", region="110105")
    with p11.factory.begin() as s:
        t = s.scalar(select(Teacher))
        v = next_value(s, "outbox")
        rec = CoreRecord(number44, "11", v, "upsert", {"JBXX": {"XM": "冒用"}}, (), None)
        s.add(OutboxEntry(version=v, teacher_id=t.id, teacher_number=number44, op="upsert", **outbox.entry_values(rec)))
    assert p11.client.run_round().status == "ok"
    with p11.factory() as s:
        (parked,) = s.scalars(select(ParkedRecord)).all()
        assert parked.teacher_number == number44 and parked.reason == "owned_by_other_province"
        assert parked.details == {"owner": "44"}
    with national() as s:
        assert s.get(TeacherCore, number44).fields["JBXX"]["XM"] == "教师040"  # untouched
    effective_teacher(p11, "042", region="110105")  # later batches still flow
    assert p11.client.run_round().status == "ok"
    with national() as s:
        assert s.get(Province, "11").last_version == 3


def test_operator_key_rotation_with_overlap(federation):
    import base64

    from national_node.ledger import ledger
    from national_node.registry import registry
    from provincial_node.config import config_from_env
    from provincial_node.sync.keys import create_key

    app, transport, p44, p11, national = federation
    keys = runtime_of(app).keys()
    old = p44.client.signer.keyid
    new = create_key(config_from_env(p44.env).signing_key_path, utcnow())  # in the ring, not yet listed
    effective_teacher(p44, "050")
    assert p44.client.run_round().status == "ok"
    assert p44.client.signer.keyid == old  # the newest key the trust lists signs: the old one still
    with national.begin() as s:
        trust = registry.add_key(s, keys, "test.tmis/log/v1", "44", base64.b64encode(new.public.raw).decode())
    assert set(trust.province_keys("44").keys) == {old, new.keyid}
    effective_teacher(p44, "051")
    assert p44.client.run_round().status == "ok"
    assert p44.client.signer.keyid == new.keyid  # listed now: the province switched, the same client, no restart
    with p44.factory() as s:
        last = s.scalar(select(SyncBatch).order_by(SyncBatch.seq.desc()).limit(1))
        assert json.loads(last.data.split(b"\n")[0])["signatures"][0]["keyid"] == new.keyid
    with national.begin() as s:
        registry.revoke_key(s, keys, "test.tmis/log/v1", old[:16], "rotation complete")
    effective_teacher(p44, "052")
    assert p44.client.run_round().status == "ok"  # the new key alone is enough
    with national() as s:
        assert s.get(Province, "44").last_version == 3
        latest = ledger.current_trust(s).version
    # every new trust version reached the provinces as a signed trust_update and extends their chain
    from provincial_node.sync import status as sync_mod

    for node in (p44, p11):
        node.client.run_round()
        with node.factory() as s:
            assert sync_mod.status(s)["trust_version"] == latest


def test_trust_renewal_reaches_the_provinces(federation):
    from national_node.ledger import ledger
    from national_node.registry import registry
    from provincial_node.sync import status as sync_mod

    app, transport, p44, p11, national = federation
    with national.begin() as s:
        before = ledger.current_trust(s)
        renewed = registry.renew(s, runtime_of(app).keys(), "test.tmis/log/v1", "yearly renewal")
    assert renewed.version == before.version + 1
    assert renewed.expires >= before.expires
    assert set(renewed.provinces) == set(before.provinces)
    effective_teacher(p44, "060")
    assert p44.client.run_round().status == "ok"
    with p44.factory() as s:
        assert sync_mod.status(s)["trust_version"] == renewed.version


def test_status_change_and_transfer_out_keep_the_stored_fields_and_history_points_into_the_batches(federation):
    app, transport, p44, p11, national = federation
    number = effective_teacher(p44, "030")
    assert p44.client.run_round().status == "ok"
    with p44.factory() as s:
        last = s.scalar(select(SyncBatch).order_by(SyncBatch.seq.desc()).limit(1))
        data, seq, batch_hash = last.data, last.seq, last.batch_hash
    lines = data.rstrip(b"\n").split(b"\n")[1:]
    line = [x for x in lines if parse_record(x).teacher_number == number][-1]
    first = parse_record(line)
    # the province retires the teacher, then reports a transfer out (signed with its own key)
    status = CoreRecord(
        number, "44", read_header(data)[1].version_to + 1, "status_change", {"JBXX": {"RYZTM": "301"}}, first.withheld
    )
    out = CoreRecord(number, "44", status.version + 1, "transfer_out", {}, first.withheld, "11")
    built = build_batch(
        province="44",
        seq=seq + 1,
        prev_batch_hash=batch_hash,
        created_at=utcnow(),
        schema_version="test",
        log_origin="test.tmis/log/v1",
        records=[status, out],
        signer=p44.client.signer,
    )
    p44.client.call("POST", "/api/v1/provinces/44/batches", built.data)
    with national() as s:
        core = s.get(TeacherCore, number)
        assert (core.version, core.op) == (out.version, "transfer_out")
        assert core.fields["JBXX"]["RYZTM"] == "301"  # merged into the stored view ...
        assert core.fields["JBXX"]["XM"] == first.fields["JBXX"]["XM"]  # ... which kept everything else
        history = s.scalars(
            select(TeacherCoreHistory)
            .where(TeacherCoreHistory.teacher_number == number)
            .order_by(TeacherCoreHistory.version)
        ).all()
        assert [(h.version, h.op) for h in history] == [
            (first.version, "upsert"),
            (status.version, "status_change"),
            (out.version, "transfer_out"),
        ]
        assert all(h.fields is None for h in history)  # the fields live in the stored batches
        assert record_at(s, number, first.version) == line
        assert parse_record(record_at(s, number, status.version)) == status
        assert parse_record(record_at(s, number, out.version)) == out
        assert record_at(s, number, out.version + 1) is None
    env = app.extensions["test_env"]
    shown = cli(env, "national", "teacher", number)
    assert f"province 44  version {out.version}  transfer_out" in shown
    assert f"version {status.version:>8}  44  status_change  batch 44#{seq + 1}" in shown
    assert cli(env, "national", "teacher", number, "--version", str(first.version)).strip() == line.decode()
    from click.testing import CliRunner

    from common.cli import tmis

    for args, message in (
        (["4400000000019"], "wrong check character"),
        ([number, "--version", "-1"], "--version"),
        ([number, "--version", str(out.version + 1)], "no batch applied version"),
    ):
        result = CliRunner().invoke(tmis, ["national", "teacher", *args], obj={"env": env})
        assert result.exit_code != 0 and message in result.output, result.output


class _Overtaking:
    """Holds back the first send of batch 1 so that the batches pushed after it reach the national node first."""

    def __init__(self, inner) -> None:
        import threading

        self.inner, self.lock, self.seen, self.answers = inner, threading.Lock(), set(), []

    def request(self, method, path, body=b"", headers=None):
        import json
        import time

        seq = None
        if path.endswith("/batches"):
            seq = read_header(body)[1].seq
            with self.lock:
                first = seq not in self.seen
                self.seen.add(seq)
            if seq == 1 and first:
                time.sleep(0.2)  # well within the national node's TURN_WAIT_SECONDS
        r = self.inner.request(method, path, body, headers)
        if seq is not None:
            with self.lock:
                self.answers.append((seq, r.status, json.loads(r.body).get("code") if r.status >= 400 else None))
        return r


def test_a_pipelined_push_applies_in_order_when_batches_overtake_each_other(federation):
    import dataclasses

    app, transport, p44, p11, national = federation
    numbers = {effective_teacher(p44, f"{n:03d}") for n in range(40, 46)}
    p44.client.settings = dataclasses.replace(p44.client.settings, batch_size=2, push_window=3)
    p44.client.transport = wire = _Overtaking(transport)
    rnd = p44.client.run_round()
    assert rnd.status == "ok", rnd.errors
    with p44.factory() as s:
        built = s.scalars(select(SyncBatch).order_by(SyncBatch.seq)).all()
        assert len(built) >= 3 and {b.status for b in built} == {"accepted"}
    with national() as s:
        assert s.get(Province, "44").last_seq == len(built)
        assert numbers <= set(s.scalars(select(TeacherCore.teacher_number)))
        assert [
            seq for (seq,) in s.execute(select(Batch.seq).where(Batch.province_code == "44").order_by(Batch.leaf_index))
        ] == list(range(1, len(built) + 1))
    gaps = [a for a in wire.answers if a[2] == "protocol_sequence_gap"]
    if runtime_of(app).engine.dialect.name == "postgresql":
        assert not gaps  # a batch that arrives early waits for its predecessor's commit
    else:
        assert gaps  # SQLite: refused as a gap, then sent again once its predecessor was accepted


def test_the_push_takes_the_file_the_build_handed_over_only_while_it_is_the_stored_one(federation):
    from sqlalchemy import inspect

    app, transport, p44, p11, national = federation
    effective_teacher(p44, "020")
    sent: list[bytes] = []
    request = transport.request

    def recording(method, path, body=b"", headers=None):
        if path.endswith("/batches"):
            sent.append(body)
        return request(method, path, body, headers)

    transport.request = recording
    transport.fail_next = 100  # built, then every send fails: the batch stays built
    assert p44.client.run_round().status == "failed"
    transport.fail_next = 0
    with p44.factory() as s:
        batch = s.get(SyncBatch, 1)
        assert "data" in inspect(batch).unloaded  # the file is not loaded with the row
        stored, batch_hash = batch.data, batch.batch_hash
    assert p44.client._handoff == {1: (batch_hash, stored)}  # handed over by the build
    p44.client._handoff = {1: ("0" * 64, b"a file the database does not hold")}
    assert p44.client._load_batch(1) == (stored, batch_hash, 1)  # not the stored one: read from the database
    p44.client._handoff = {1: (batch_hash, b"handed over")}
    assert p44.client._load_batch(1)[0] == b"handed over" and p44.client._handoff == {}
    assert p44.client.run_round().status == "ok"  # a new round does not use what an earlier one handed over
    assert sent and all(body == stored for body in sent)
