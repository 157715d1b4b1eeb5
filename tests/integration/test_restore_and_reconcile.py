"""A province restored from an older backup, and reconciliation between the tiers (docs/operations.md), in one
process on SQLite and PostgreSQL: back up, two rounds with changes, restore, continue — the province adopts the
national chain, never equivocates, reports exactly the edits made after the backup, and converges; a
difference between the tiers is found by descending the digest tree and repaired by a reload."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner
from sqlalchemy import delete, func, select

from common.cli import tmis
from national_node.intake.models import Evidence, TeacherCore
from national_node.provinces.models import Province
from national_node.reconcile import reconcile as national_reconcile
from national_node.reconcile.models import Reconciliation
from provincial_node.sync import reconcile
from provincial_node.sync.models import RecoveryEntry, SyncBatch
from tests.integration.federation import cli, effective_teacher, rename
from tests.integration.test_sync_inprocess import federation  # noqa: F401 - the fixture


def _dispose(node) -> None:
    node.factory.kw["bind"].dispose()  # the restore replaces the database under the node's connections


def test_a_province_restored_from_an_older_backup_converges_and_reports_the_lost_edits(federation, tmp_path):  # noqa: F811
    app, transport, p44, p11, national = federation
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(201, 205)]
    assert p44.client.run_round().status == "ok"
    backup = tmp_path / "p44.backup"
    assert "backup written" in cli(p44.env, "province", "db", "backup", "-o", str(backup))
    # after the backup: two rounds with changes (edits of two files, two new teachers)
    rename(p44, numbers[0], "改名甲")
    new1 = effective_teacher(p44, "205")
    assert p44.client.run_round().status == "ok"
    rename(p44, numbers[1], "改名乙")
    new2 = effective_teacher(p44, "206")
    assert p44.client.run_round().status == "ok"
    with national() as s:
        before = s.get(Province, "44")
        last_seq, last_version = before.last_seq, before.last_version
    # the province's disk fails; it is restored from the older backup
    _dispose(p44)
    result = CliRunner().invoke(tmis, ["province", "db", "restore", str(backup), "--yes"], obj={"env": p44.env})
    assert result.exit_code == 0, result.output
    with p44.factory() as s:
        assert s.scalar(select(func.max(SyncBatch.seq))) < last_seq  # it really is older
    rename(p44, numbers[2], "恢复后修改")  # work goes on after the restore, before any round
    rnd = p44.client.run_round()
    assert rnd.status == "partial", rnd.errors  # partial: the recovery report needs the operators
    assert [e["code"] for e in rnd.errors] == ["restored_from_backup"]
    assert sorted(rnd.notes["recovery"]["lost_edits"]) == sorted([numbers[0], numbers[1], new1, new2])
    with p44.factory() as s:
        report = {r.teacher_number: r for r in s.scalars(select(RecoveryEntry))}
    assert set(report) == {numbers[0], numbers[1], new1, new2}  # exactly the edits made after the backup
    assert report[new1].local_version is None and report[numbers[0]].local_version is not None
    assert rnd.notes["reconcile"]["match"] is True, rnd.notes  # converged: the core views agree
    with national() as s:
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0  # never equivocated
        after = s.get(Province, "44")
        assert after.last_seq == last_seq + 1 and after.last_version == last_version + 1  # the new edit continued
        assert s.get(TeacherCore, numbers[2]).fields["JBXX"]["XM"] == "恢复后修改"
    again = p44.client.run_round()
    assert again.status == "ok", again.errors
    out = cli(p44.env, "province", "sync", "recovery")
    assert all(tn in out for tn in (numbers[0], numbers[1], new1, new2)) and "4 teacher(s)" in out
    out = cli(p44.env, "province", "sync", "recovery", "--resolve-all")
    assert "0 teacher(s)" in out
    bundle = tmp_path / "bundle"
    cli(app.extensions["test_env"], "national", "export", "-o", str(bundle))
    audit = CliRunner().invoke(tmis, ["audit", "bundle", str(bundle)], obj={"env": {}})
    assert audit.exit_code == 0, audit.output


def test_a_difference_between_the_tiers_is_found_by_descent_and_repaired_by_a_reload(federation):  # noqa: F811
    app, transport, p44, p11, national = federation
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(211, 216)]
    first = p44.client.run_round()
    assert first.status == "ok" and first.notes["reconcile"] == {
        "match": True,
        "root": first.notes["reconcile"]["root"],
        "leaves": 5,
    }
    lost = numbers[3]
    with national.begin() as s:  # the national store loses a row (e.g. restored from its own older backup)
        s.execute(delete(TeacherCore).where(TeacherCore.teacher_number == lost))
    rnd = p44.client.run_round()
    assert rnd.status == "partial"
    (error,) = rnd.errors
    assert error["code"] == "reconciliation_mismatch"
    differing = rnd.notes["reconcile"]["differing"]
    assert [d["teacher_number"] for d in differing] == [lost]
    assert differing[0]["national_version"] is None and differing[0]["province_version"] >= 1
    assert rnd.notes["reconcile"]["buckets_checked"] == 1  # one bucket's leaves travelled, not everything
    with national() as s:
        rec = s.scalars(select(Reconciliation).order_by(Reconciliation.id.desc())).first()
        assert not rec.matched and [d["teacher_number"] for d in rec.differing] == [lost]  # reported on both sides
    out = cli(p44.env, "province", "sync", "reload", "--teacher", lost)
    assert "queued as version" in out
    repaired = p44.client.run_round()
    assert repaired.status == "ok", repaired.errors
    assert repaired.notes["reconcile"]["match"] is True
    with national() as s:
        assert s.get(TeacherCore, lost) is not None
        rec = s.scalars(select(Reconciliation).order_by(Reconciliation.id.desc())).first()
        assert rec.matched
    out = cli(app.extensions["test_env"], "national", "reconciliations", "--province", "44")
    assert "differ" in out and lost in out


def test_both_tiers_write_leaves_in_chunks(federation, monkeypatch):  # noqa: F811
    app, transport, p44, p11, national = federation
    monkeypatch.setattr(reconcile, "FOLD_LEAVES", 2)  # leaves written after every batch of two records
    monkeypatch.setattr(national_reconcile, "REFRESH_LEAVES", 2)  # and by the national node two at a time
    p44.client.settings = dataclasses.replace(p44.client.settings, batch_size=2)
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(221, 226)]
    rename(p44, numbers[0], "改名后")  # a later record of the first teacher, in a later batch: its leaf wins
    rnd = p44.client.run_round()
    assert rnd.status == "ok", rnd.errors
    assert rnd.batches == 3 and rnd.notes["reconcile"]["match"] is True and rnd.notes["reconcile"]["leaves"] == 5


def test_a_parked_record_is_sent_again_after_its_fix_with_the_outcome_shown(federation):  # noqa: F811
    from sqlalchemy import update

    from provincial_node.sync.models import ParkedRecord

    app, transport, p44, p11, national = federation
    number = effective_teacher(p11, "221", region="110105")
    assert p11.client.run_round().status == "ok"
    with national.begin() as s:  # a data error at the national node: the teacher is filed under province 44
        s.execute(update(TeacherCore).where(TeacherCore.teacher_number == number).values(province_code="44"))
    rename(p11, number, "更正后")
    p11.client.run_round()
    with p11.factory() as s:
        (parked,) = s.scalars(select(ParkedRecord)).all()
        assert parked.reason == "owned_by_other_province"
    out = cli(p11.env, "province", "sync", "reload", "--parked", str(parked.id))
    assert "queued as version" in out
    assert "waiting for the next round" in cli(p11.env, "province", "sync", "parked")
    p11.client.run_round()
    assert "refused again (owned_by_other_province)" in cli(p11.env, "province", "sync", "parked")
    with national.begin() as s:  # the ministry corrects the owner
        s.execute(update(TeacherCore).where(TeacherCore.teacher_number == number).values(province_code="11"))
    cli(p11.env, "province", "sync", "reload", "--parked", str(parked.id))
    rnd = p11.client.run_round()
    assert rnd.status == "ok", rnd.errors
    assert ": accepted" in cli(p11.env, "province", "sync", "parked")
    with national() as s:
        assert s.get(TeacherCore, number).fields["JBXX"]["XM"] == "更正后"


def test_the_national_node_backs_up_and_restores(federation, tmp_path):  # noqa: F811
    app, transport, p44, p11, national = federation
    nat_env = app.extensions["test_env"]
    effective_teacher(p44, "231")
    assert p44.client.run_round().status == "ok"
    backup = tmp_path / "national.backup"
    assert "backup written" in cli(nat_env, "national", "db", "backup", "-o", str(backup))
    refused = CliRunner().invoke(tmis, ["national", "db", "backup", "-o", str(backup)], obj={"env": nat_env})
    assert "refusing to overwrite" in str(refused.exception)  # a backup is never overwritten
    with national() as s:
        before = s.scalar(select(func.count()).select_from(TeacherCore))
    effective_teacher(p44, "232")
    assert p44.client.run_round().status == "ok"
    from common.http import runtime_of

    runtime_of(app).engine.dispose()
    no = CliRunner().invoke(tmis, ["national", "db", "restore", str(backup)], obj={"env": nat_env})
    assert no.exit_code != 0 and "--yes" in no.output  # asks for confirmation
    cli(nat_env, "national", "db", "restore", str(backup), "--yes")
    with national() as s:
        assert s.scalar(select(func.count()).select_from(TeacherCore)) == before
    assert "no drift" in cli(nat_env, "national", "db", "check")
