"""Sealed identities across the federation, in one process (SQLite and PostgreSQL): a sync round, a duplicate
identity across two provinces and a cross-province transfer, with no ID number in clear in any table of either
node — while lookups, duplicate detection, the transfer and the audit of the exported bundle still work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import select

from common.cli import tmis
from common.db import session_scope
from national_node.inbox.models import InboxMessage
from national_node.intake.models import DuplicateIdentity, TeacherCore
from national_node.provinces.models import ProvinceSealKey
from provincial_node.sync import outbox
from provincial_node.sync.models import OutboxEntry, SealKey
from provincial_node.teacher_files import files
from provincial_node.teacher_files.models import Teacher
from sync_protocol.audit import audit_bundle, audit_transfer
from sync_protocol.seal import is_sealed
from tests.factories import resident_id
from tests.helpers import ctx
from tests.integration.federation import cli
from tests.integration.test_transfers_inprocess import decide, local, national_row, requested_at_a, rounds
from tests.integration.test_transfers_inprocess import fed as federation

sealed_fed = federation  # the two-province federation of the transfer tests


def _pg_dump() -> str:
    for path in ("/usr/lib/postgresql/15/bin/pg_dump", "/usr/bin/pg_dump"):
        if Path(path).exists():
            return path
    return "pg_dump"


def _raw(factory) -> str:
    """Every table of a node's database as stored (no column type decrypts anything)."""
    with factory() as s:
        conn = s.connection()
        out = []
        for table in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.select(sa.literal_column("*")).select_from(sa.table(table))).fetchall()
            out.append(f"{table}: {[tuple(r) for r in rows]!r}")
        return "\n".join(out)


def _register(node, seq: str, number: str | None = None) -> str:
    """A teacher made effective at the node's school, with an ID number of our choosing; the teacher number."""
    from tests.integration.federation import effective_teacher

    return effective_teacher(node, seq, number=number)


def test_round_duplicate_and_transfer_with_sealed_identities(sealed_fed):
    f, a, b = sealed_fed, sealed_fed["a"], sealed_fed["b"]
    twice = resident_id("440106", "19880315", "551")
    moved_number = resident_id("440106", "19880315", "552")
    in_a = _register(a, "551", twice)
    moving = _register(a, "552", moved_number)
    in_b = _register(b, "553", twice)  # the same person registered in Beijing too
    with a.factory() as s:
        assert s.scalar(select(SealKey.kid).where(SealKey.registered_at.is_not(None)))  # registered at enrolment
    rounds(a, b, a, b)
    # the national node found the duplicate through the keyed index, and told both without the number
    with f["national"]() as s:
        x, y = s.get(TeacherCore, in_a), s.get(TeacherCore, in_b)
        assert x.identity_key == y.identity_key and x.identity_key.startswith("bi1:")
        assert is_sealed(x.fields["JBXX"]["SFZJH"]) and is_sealed(y.fields["JBXX"]["SFZJH"])
        (dup,) = s.scalars(select(DuplicateIdentity)).all()
        assert {dup.province_a, dup.province_b} == {"11", "44"}
        notices = s.scalars(select(InboxMessage).where(InboxMessage.kind == "duplicate_identity")).all()
        assert len(notices) == 2
        assert {r.province_code for r in s.scalars(select(ProvinceSealKey))} == {"11", "44"}
    # a cross-province transfer: the identity and the file travel sealed, B stores them under its data key
    tid, uid, aid = requested_at_a(f, moving)
    assert local(a, tid=aid).doc_number == moved_number  # A opened what the national node sealed to it
    decide(a, "school_info", aid)
    decide(a, "county_info", aid)
    rounds(a, b, b, a)
    assert national_row(f, uid).state == "completed"
    with b.factory() as s:
        t = s.scalar(select(Teacher).where(Teacher.teacher_number == moving))
        assert t.doc_number == moved_number and t.data["JBXX"]["SFZJH"] == moved_number
        found = files.find_by_identity(ctx(s, b.actors["school_info"], province="11"), "1", moved_number)
        assert found is not None and found.teacher_number == moving
    # nothing stored in clear, anywhere
    for name, factory in (("national", f["national"]), ("44", a.factory), ("11", b.factory)):
        raw = _raw(factory)
        for number in (twice, moved_number):
            assert number not in raw, f"{number} in clear at {name}: " + raw[max(0, raw.find(number) - 300) :][:600]
    if f["national"].kw["bind"].dialect.name == "postgresql":  # and as a thief of a dump would see them
        for factory in (f["national"], a.factory, b.factory):
            url = factory.kw["bind"].url.set(drivername="postgresql").render_as_string(hide_password=False)
            dump = subprocess.run([_pg_dump(), "--data-only", url], capture_output=True, check=True).stdout
            assert len(dump) > 10_000 and twice.encode() not in dump and moved_number.encode() not in dump
    # and the exported bundle still verifies without any seal key
    bundle = f["tmp"] / "bundle"
    CliRunner().invoke(tmis, ["national", "export", "-o", str(bundle)], obj={"env": f["env"]}, catch_exceptions=False)
    assert audit_bundle(bundle).ok
    report, _trail = audit_transfer(bundle, uid)
    assert report.ok
    data = b"".join(p.read_bytes() for p in bundle.rglob("*") if p.is_file())
    assert twice.encode() not in data and moved_number.encode() not in data


def test_records_from_before_the_seal_key_are_held_under_the_data_key_then_sealed(sealed_fed):
    f, a = sealed_fed, sealed_fed["a"]
    with session_scope(a.factory) as s:  # as before enrolment: the province has no seal key yet
        s.execute(sa.delete(SealKey))
    number = resident_id("440106", "19880315", "561")
    teacher = _register(a, "561", number)
    raw = _raw(a.factory)
    assert number not in raw and "seal1:" not in raw.split("outbox: ", 1)[1].split("\n", 1)[0]
    with a.factory() as s:
        assert outbox.held(s) == 1
    rounds(a)  # the seal phase registers a new seal key and seals the backlog before the build
    with a.factory() as s:
        assert outbox.held(s) == 0 and s.scalar(select(SealKey.kid).where(SealKey.registered_at.is_not(None)))
        (record,) = s.scalars(select(OutboxEntry.record)).all()
        assert is_sealed(record["fields"]["JBXX"]["SFZJH"])
    with f["national"]() as s:
        core = s.get(TeacherCore, teacher)
        assert core.identity_key.startswith("bi1:") and is_sealed(core.fields["JBXX"]["SFZJH"])
    assert number not in _raw(a.factory) and number not in _raw(f["national"])


def test_national_seal_key_rotation_and_the_data_keys_commands(sealed_fed):
    f, a = sealed_fed, sealed_fed["a"]
    before = _register(a, "571")
    rounds(a)
    status = cli(f["env"], "national", "data-keys", "status")
    assert "current n1, index key i1" in status and "province 44: seal key 44-" in status
    assert "without a keyed index: 0" in status
    refused = CliRunner().invoke(tmis, ["national", "data-keys", "init"], obj={"env": f["env"]})
    assert refused.exit_code != 0 and "already exists" in str(refused.exception or refused.output)
    assert "new current seal key n2" in cli(f["env"], "national", "data-keys", "rotate")
    after = _register(a, "572")  # sealed under the old province seal key until the next round registers anew
    rnd = a.client.run_round()
    assert rnd.status == "ok", rnd.errors
    assert rnd.notes.get("seal_key_registered", "").startswith("44-")
    with a.factory() as s:
        kids = {r.recipient: r.kid for r in s.scalars(select(SealKey))}
        assert set(kids) == {"n1", "n2"}
    newest = _register(a, "573")
    rounds(a)
    with f["national"]() as s:
        cores = [s.get(TeacherCore, n) for n in (before, after, newest)]
        assert all(c is not None and c.identity_key.startswith("bi1:") for c in cores)
        assert cores[2].fields["JBXX"]["SFZJH"].split(":")[1] == kids["n2"]
        assert cores[0].fields["JBXX"]["SFZJH"].split(":")[1] == kids["n1"]
        first = {c.teacher_number: c.identity_key for c in cores}
    out = cli(f["env"], "national", "data-keys", "rotate", "--index")
    assert "new identity index key i2; 3 core records indexed again" in out
    with f["national"]() as s:
        assert all(s.get(TeacherCore, n).identity_key not in (None, first[n]) for n in first)
    assert "indexed 0 core records; 0 without a keyed index" in cli(f["env"], "national", "data-keys", "reindex")
