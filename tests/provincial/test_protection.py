"""ID numbers protected inside the provincial node (issue 16, item 5) on SQLite and PostgreSQL: encrypted at rest
in every table that holds them (the outbox and the protocol messages too: sealed, or held under the data key
until the province has a seal key), found by the blind index for lookups and the duplicate check, masked by role,
rotatable, and the migration path of an existing node."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.protection import PREFIX, DataKeyMissingError, DataKeys, ProtectedDataError, install, keys_of
from provincial_node import datakeys
from provincial_node.accounts import accounts
from provincial_node.audit_trail import trail
from provincial_node.rules import mask_id_number
from provincial_node.teacher_files import duplicates, exporting, files, importexport, review
from provincial_node.teacher_files.models import Teacher
from tests.factories import GOOD_RECORDS, resident_id
from tests.provincial.conftest import PASSWORD, Province

WORKFLOW = ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")
# tables that may keep an identity in clear: none (docs/security.md)
NOT_YET: set[str] = set()


def _file(p: Province, seq: str, *, effective: bool = False) -> Teacher:
    rid = resident_id("440106", "19880315", seq)
    basic = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in WORKFLOW}
    basic.update(SFZJH=rid, XBM="1" if int(seq[-1]) % 2 else "2", XM=f"教师{seq}")
    t = files.register_teacher(
        p.ctx("school1_info"), p.units["2144000001"].id, {k: basic[k] for k in ("XM", "SFZJLXM", "SFZJH")}
    )
    files.update_group(p.ctx("school1_info"), t.id, "JBXX", basic)
    if effective:
        files.submit(p.ctx("school1_info"), t.id)
        review.review(p.ctx("school1_rev"), t.id, "approve")
        review.review(p.ctx("tianhe_info"), t.id, "approve")
    return t


def _raw_rows(p: Province) -> dict[str, str]:
    """Every table's rows as the database holds them (no column type decrypts anything)."""
    conn = p.session.connection()
    out = {}
    for table in sa.inspect(conn).get_table_names():
        rows = conn.execute(sa.select(sa.literal_column("*")).select_from(sa.table(table))).fetchall()
        out[table] = repr([tuple(r) for r in rows])  # (a Row's own repr shortens long values)
    return out


def test_no_id_number_is_stored_in_clear(province):
    numbers = [_file(province, s, effective=s == "702").doc_number for s in ("701", "702")]
    account = accounts.create_account(
        province.ctx("school1_admin"),
        username="real_name_holder",
        real_name="实名",
        unit=province.units["2144000001"],
        role="query",
        password=PASSWORD,
        id_number=resident_id("440106", "19790101", "703"),
        phone="13800138000",
    )
    numbers.append(account.id_number)
    province.session.flush()
    raw = _raw_rows(province)
    leaks = {t: [n for n in numbers if n in text] for t, text in raw.items() if t not in NOT_YET}
    assert {t: n for t, n in leaks.items() if n} == {}
    assert PREFIX in raw["teacher"] and PREFIX in raw["teacher_history"] and PREFIX in raw["account"]
    assert "enc1:" in raw["outbox"]  # held under the data key: this province has no seal key yet (docs/security.md)
    # and the services still see clear values
    t = duplicates.find_by_identity(province.ctx("school1_info"), "1", numbers[0])
    assert t is not None and t.doc_number == numbers[0] and t.draft["JBXX"]["SFZJH"] == numbers[0]
    assert files.history(province.ctx("school1_info"), t.id)[0].changes


def test_the_sqlite_file_and_a_pg_dump_hold_no_id_number(database_url_factory, dialect):
    """The raw database, as a thief of the disk or of a dump would see it: files (drafts and their history) and
    real-name accounts written and committed, then the SQLite file with its WAL, or ``pg_dump``, searched."""
    import os

    from common import migrations
    from common.config import DatabaseConfig
    from common.db import create_db_engine, make_session_factory, session_scope
    from provincial_node import MIGRATIONS_DIR
    from provincial_node.accounts import units
    from provincial_node.accounts.access import actor_for
    from tests.helpers import ctx
    from tests.provincial.conftest import UNITS_CSV

    url = database_url_factory("raw")
    engine = install(create_db_engine(DatabaseConfig(url)), DataKeys.generate())
    migrations.upgrade(engine, MIGRATIONS_DIR)
    numbers = [resident_id("440106", "19880315", s) for s in ("711", "712")]
    with session_scope(make_session_factory(engine)) as s:
        units.import_units_csv(ctx(s), UNITS_CSV)
        school = units.get_unit_by_code(s, "2144000001")
        info = accounts.create_account(
            ctx(s),
            username="raw_info",
            real_name="实名",
            unit=school,
            role="infoadmin",
            password=PASSWORD,
            id_number=resident_id("440106", "19790101", "713"),
            phone="13800138000",
        )
        numbers.append(info.id_number)
        for n in numbers[:2]:
            t = files.register_teacher(
                ctx(s, actor_for(s, info)), school.id, {"XM": "某人", "SFZJLXM": "1", "SFZJH": n}
            )
            gender = "1" if int(n[-2]) % 2 else "2"
            files.update_group(ctx(s, actor_for(s, info)), t.id, "JBXX", {**t.draft["JBXX"], "XBM": gender})
    if dialect == "sqlite":
        db = engine.url.database
        data = b"".join(Path(f).read_bytes() for f in (db, db + "-wal") if os.path.exists(f))
    else:
        dump_url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        data = subprocess.run(["pg_dump", "--data-only", dump_url], capture_output=True, check=True).stdout
    engine.dispose()
    assert len(data) > 10_000
    for n in numbers:
        assert n.encode() not in data


def test_masked_by_role_in_reads_and_exports(province):
    t = _file(province, "721", effective=True)
    full = files.read_file(province.ctx("tianhe_info"), t.id)
    assert full["data"]["JBXX"]["SFZJH"] == t.doc_number and full["draft"]
    basic = files.read_file(province.ctx("tianhe_query"), t.id)
    assert basic["data"]["JBXX"]["SFZJH"] == mask_id_number(t.doc_number) != t.doc_number
    assert basic["draft"] == {} and "LXFS" not in basic["data"] and "HYZKM" not in basic["data"]["JBXX"]
    data = exporting.export_unit(
        province.ctx("tianhe_query"), province.units["440106"].id, "统计核对", fmt="csv", groups=["JBXX"]
    )
    text = data.decode("utf-8-sig")
    assert t.doc_number not in text and mask_id_number(t.doc_number) in text
    rows = list(csv.reader(io.StringIO(text)))
    assert "婚姻状况码(HYZKM)" not in rows[0]
    data = exporting.export_unit(
        province.ctx("tianhe_info"), province.units["440106"].id, "上报", fmt="csv", groups=["JBXX"]
    )
    assert t.doc_number in data.decode("utf-8-sig")


def test_an_import_learns_only_that_the_person_is_on_file(province):
    """Issue 16: any school account could learn whether an ID number is on file anywhere in the province, and
    the other file's teacher number, by importing a one-row file."""
    t = _file(province, "731")
    header = "身份证件类型(SFZJLXM),身份证件号(SFZJH),姓名(XM)\n"
    result = importexport.import_file(
        province.ctx("school2_info"),
        province.units["2144000002"].id,
        "JBXX",
        (header + f"1,{t.doc_number},某人\n").encode(),
        "csv",
    )
    assert result["failed"] == 1
    (error,) = result["errors"]
    assert error["reason_zh"] == "该证件号已在本省建档" and t.teacher_number not in repr(result)
    # the bureau above sees where the person is on file; the importing school does not
    (event,) = trail.query(province.ctx("tianhe_info"), action="files.duplicate_identity")
    assert event.target_id == t.teacher_number and event.details["attempted_at"] == "2144000002"
    assert trail.query(province.ctx("school2_info"), action="files.duplicate_identity") == []


def test_rotation_re_encrypts_under_the_new_key(province):
    s = province.session
    t = _file(province, "741")
    s.flush()
    engine = s.get_bind().engine
    old = keys_of(engine.dialect)
    new = old.rotated()
    install(engine, new)
    try:
        for row in s.scalars(sa.select(Teacher)):
            sa.orm.attributes.flag_modified(row, "doc_number")
            sa.orm.attributes.flag_modified(row, "draft")
        s.flush()
        raw = s.connection().execute(sa.text("SELECT doc_number, draft FROM teacher WHERE id = :i"), {"i": t.id}).one()
        assert raw[0].startswith(f"{PREFIX}{new.current}:") and f"{PREFIX}{new.current}:" in str(raw[1])
        assert datakeys.rows_under_old_keys(s, new) == 0
        s.expire_all()
        assert s.get(Teacher, t.id).doc_number == t.doc_number  # read back under the new key
        assert (
            duplicates.find_by_identity(province.ctx("school1_info"), "1", t.doc_number).id == t.id
        )  # index unchanged
    finally:
        install(engine, old)  # the engine is shared by the other tests


def test_rows_from_before_protection_are_encrypted_by_reencrypt(province):
    """The migration path of an existing node: rows written in clear (and without blind index) are read as they
    are, counted as unprotected, and protected by ``datakeys.reencrypt``."""
    s = province.session
    t = _file(province, "751")
    s.flush()
    number = t.doc_number
    conn = s.connection()
    conn.execute(
        sa.text("UPDATE teacher SET doc_number = :n, doc_index = NULL WHERE id = :i"), {"n": number, "i": t.id}
    )
    s.expire_all()
    assert s.get(Teacher, t.id).doc_number == number  # legacy clear values stay readable
    assert datakeys.unprotected_rows(s) == 1
    factory = sa.orm.sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    datakeys.reencrypt(factory, batch=2)
    s.expire_all()
    assert datakeys.unprotected_rows(s) == 0
    assert duplicates.find_by_identity(province.ctx("school1_info"), "1", number).id == t.id


def test_tampered_ciphertext_and_a_missing_key_fail_loudly(province, tmp_path):
    keys = DataKeys.generate()
    sealed = keys.encrypt("440106198803151234")
    assert keys.decrypt(sealed) == "440106198803151234"
    broken = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ProtectedDataError):
        keys.decrypt(broken)
    with pytest.raises(ProtectedDataError):
        DataKeys.generate().decrypt(sealed)  # another node's key
    from sqlalchemy.orm import Session

    from common.config import DatabaseConfig
    from common.db import create_db_engine

    bare = create_db_engine(DatabaseConfig(f"sqlite:///{tmp_path / 'nokeys.sqlite'}"))
    with pytest.raises(DataKeyMissingError):
        keys_of(bare.dialect)
    with Session(bare) as s:
        t = Teacher(teacher_number="4400000000018", unit_id=1, name="x", status="draft", data={}, draft={})
        t.set_identity("1", "440106198803151234")
        s.add(t)
        with pytest.raises(sa.exc.StatementError, match="no data key"):  # never written in clear
            s.flush()
    bare.dispose()
    path = tmp_path / "data.key"
    keys.save(path)
    assert (path.stat().st_mode & 0o777) == 0o600 and DataKeys.load(path).current == keys.current
    path.chmod(0o644)
    with pytest.raises(Exception, match="accessible by group or others"):
        DataKeys.load(path)
