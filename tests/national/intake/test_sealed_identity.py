"""Sealed identities at the national node (SQLite and PostgreSQL): a province seal key registered wrapped, records
whose JBXX.SFZJH is sealed applied with a keyed index and stored sealed, a cross-province duplicate found through
the keyed index and announced without the number, a bad seal parked with ``seal_invalid``, and reindex."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from common.db import utcnow
from national_node import sealing
from national_node.inbox.models import RoutedMessage
from national_node.intake import identity, intake
from national_node.intake.models import DuplicateIdentity, RefusedRecord, TeacherCore
from national_node.provinces.models import ProvinceSealKey
from sync_protocol import seal as S
from sync_protocol.batch import build_batch
from sync_protocol.records import CoreRecord
from tests.protocol.simulator import sample_record


def _register(nation, province: str) -> tuple[str, bytes]:
    keys = sealing.seal_keys_of(nation.keys)
    key, kid = S.new_seal_key(), f"{province}-test"
    wrapped = S.wrap_seal_key(
        key, province=province, kid=kid, recipient=keys.seal_keys[keys.current].public_key(), recipient_kid=keys.current
    )
    sealing.register(nation.session, keys, province, wrapped)
    assert sealing.register(nation.session, keys, province, wrapped).kid == kid  # a retried request
    return kid, key


def _sealed(record: CoreRecord, kid: str, key: bytes, *, number: str | None = None) -> CoreRecord:
    basic = dict(record.fields["JBXX"])
    basic["SFZJH"] = S.seal(
        key, kid, number or basic["SFZJH"], teacher_number=record.teacher_number, field="JBXX.SFZJH"
    )
    return record._replace(fields={**record.fields, "JBXX": basic})


def _batch(nation, signer, province, records, seq=1, prev=None):
    return build_batch(
        province=province,
        seq=seq,
        prev_batch_hash=prev,
        created_at=utcnow(),
        schema_version="test",
        log_origin=nation.origin,
        records=records,
        signer=signer,
    )


def _raw(session) -> str:
    conn = session.connection()
    out = []
    for table in sa.inspect(conn).get_table_names():
        rows = conn.execute(sa.select(sa.literal_column("*")).select_from(sa.table(table))).fetchall()
        out.append(repr([tuple(r) for r in rows]))
    return "\n".join(out)


def test_sealed_records_apply_with_a_keyed_index_and_duplicates_are_found(nation):
    s = nation.session
    s44, s11 = nation.enrol("44"), nation.enrol("11")
    k44, k11 = _register(nation, "44"), _register(nation, "11")
    r44 = sample_record("44", 1)
    number = r44.fields["JBXX"]["SFZJH"]
    r11 = sample_record("11", 1, sequence=501)
    assert intake.intake(s, nation.keys, nation.origin, "44", _batch(nation, s44, "44", [_sealed(r44, *k44)]).data).new
    got = intake.intake(
        s, nation.keys, nation.origin, "11", _batch(nation, s11, "11", [_sealed(r11, *k11, number=number)]).data
    )
    assert got.refused == []
    a, b = s.get(TeacherCore, r44.teacher_number), s.get(TeacherCore, r11.teacher_number)
    assert a.identity_key == b.identity_key and a.identity_key.startswith("bi1:")
    assert S.is_sealed(a.fields["JBXX"]["SFZJH"])  # stored as received
    (dup,) = s.scalars(sa.select(DuplicateIdentity)).all()
    assert {dup.teacher_number_a, dup.teacher_number_b} == {r44.teacher_number, r11.teacher_number}
    notices = s.scalars(sa.select(RoutedMessage).where(RoutedMessage.kind == "duplicate_identity")).all()
    assert {n.province_code for n in notices} == {"11", "44"}
    assert all(set(n.body) == {"doc_type", "teacher_numbers", "detected_at"} for n in notices)
    s.flush()
    raw = _raw(s)
    assert number not in raw  # batches, core records, notices, history: sealed or keyed only
    assert len(s.scalars(sa.select(ProvinceSealKey)).all()) == 2  # stored wrapped only
    for _kid, key in (k44, k11):
        assert key.hex() not in raw and base64.b64encode(key).decode() not in raw


@pytest.mark.parametrize("case", ["tampered", "other_teacher", "unregistered_kid"])
def test_a_record_whose_seal_does_not_open_is_parked(nation, case):
    s = nation.session
    signer = nation.enrol("44")
    kid, key = _register(nation, "44")
    good, bad = sample_record("44", 1), sample_record("44", 2)
    if case == "tampered":
        sealed = _sealed(bad, kid, key)
        v = sealed.fields["JBXX"]["SFZJH"]
        flipped = v[:-4] + ("A" if v[-4] != "A" else "B") + v[-3:]
        bad = sealed._replace(fields={**sealed.fields, "JBXX": {**sealed.fields["JBXX"], "SFZJH": flipped}})
    elif case == "other_teacher":
        bad = _sealed(bad, kid, key)._replace(teacher_number=sample_record("44", 3).teacher_number)
    else:
        bad = _sealed(bad, "44-unknown", S.new_seal_key())
    result = intake.intake(
        s, nation.keys, nation.origin, "44", _batch(nation, signer, "44", [_sealed(good, kid, key), bad]).data
    )
    assert [(r["teacher_number"], r["reason"]) for r in result.refused] == [(bad.teacher_number, "seal_invalid")]
    assert result.refused[0]["details"]["code"] == "protocol_seal_invalid"
    assert s.get(TeacherCore, bad.teacher_number) is None and s.get(TeacherCore, good.teacher_number) is not None
    (row,) = s.scalars(sa.select(RefusedRecord)).all()
    assert row.reason == "seal_invalid" and "SFZJH" in row.details["message"]


def test_reindex_after_an_upgrade_and_after_an_index_key_rotation(nation):
    s = nation.session
    signer = nation.enrol("44")
    kid, key = _register(nation, "44")
    record = sample_record("44", 1)
    intake.intake(s, nation.keys, nation.origin, "44", _batch(nation, signer, "44", [_sealed(record, kid, key)]).data)
    core = s.get(TeacherCore, record.teacher_number)
    first = core.identity_key
    core.identity_key = None  # as migration 0008_sealed_identity leaves the unkeyed SHA-256 keys of an upgraded node
    s.flush()
    assert identity.unindexed(s) == 1
    keys = sealing.seal_keys_of(nation.keys)
    assert identity.reindex(s, keys) == 1 and s.get(TeacherCore, record.teacher_number).identity_key == first
    rotated = keys.rotated(index=True)
    assert identity.reindex(s, rotated, all_rows=True) == 1
    again = s.get(TeacherCore, record.teacher_number).identity_key
    assert again.startswith("bi1:") and again != first and identity.unindexed(s) == 0


def test_registration_is_refused_for_another_province_or_a_wrong_wrap(nation):
    keys = sealing.seal_keys_of(nation.keys)
    public = keys.seal_keys[keys.current].public_key()
    wrapped = S.wrap_seal_key(S.new_seal_key(), province="11", kid="11-x", recipient=public, recipient_kid=keys.current)
    with pytest.raises(S.SealError):
        sealing.register(nation.session, keys, "44", wrapped)
    with pytest.raises(S.SealError):
        sealing.register(nation.session, keys, "11", {**wrapped, "recipient": "n9"})
    other = S.wrap_seal_key(S.new_seal_key(), province="11", kid="11-x", recipient=public, recipient_kid=keys.current)
    sealing.register(nation.session, keys, "11", other)
    with pytest.raises(S.SealError):  # a kid is registered once
        sealing.register(nation.session, keys, "11", wrapped)
