"""Reliability as separate processes over loopback HTTP, on SQLite and PostgreSQL (`tmis national serve`,
`tmis province …` commands): a key revoked while a batch it signed waits, recovered with a token and a new
key; a province restored from an older backup; a reconciliation difference found and repaired by a reload."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select

from common.keyfile import read_private_key
from national_node.intake.models import Batch, Evidence, TeacherCore
from provincial_node.config import config_from_env as provincial_config_from_env
from provincial_node.sync.models import SyncBatch
from sync_protocol.keys import Signer
from tests.conftest import run_tmis
from tests.integration.federation import effective_teacher, rename

pytestmark = pytest.mark.slow


def _sync(node, check: bool = True):
    return run_tmis("province", "sync", "run", env=node.env, check=check, timeout=300)


def _count(engine, model, *where) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _audit(nat_env, tmp_path) -> None:
    bundle = tmp_path / "bundle"
    run_tmis("national", "export", "-o", str(bundle), env=nat_env)
    audit = run_tmis("audit", "bundle", str(bundle), "--json", check=False)
    assert audit.returncode == 0, audit.stdout[-3000:]
    assert json.loads(audit.stdout)["ok"] is True


def test_a_batch_built_before_its_key_was_revoked_is_sent_after_recovery(fed, tmp_path):
    national, p, nat, nat_env = fed
    p44 = p["44"]
    old = Signer.from_pem(read_private_key(provincial_config_from_env(p44.env).signing_key_path))
    effective_teacher(p44, "001")
    national.kill()  # the batch is built and signed with the old key, but cannot be sent
    assert _sync(p44, check=False).returncode == 1
    with p44.factory() as s:
        (batch,) = s.scalars(select(SyncBatch)).all()
        assert batch.status == "built"
        batch_hash = batch.batch_hash
    national.start()
    run_tmis("national", "keys", "revoke", "--key-id", old.keyid[:16], "--reason", "compromised", env=nat_env)
    stranded = _sync(p44, check=False)
    assert stranded.returncode == 1
    assert "protocol_key_untrusted" in stranded.stderr and "keys rotate" in stranded.stderr
    assert _count(nat, Batch, Batch.province_code == "44") == 0
    token = run_tmis("national", "enrol-token", "--province", "44", env=nat_env).stdout.strip()
    rotated = run_tmis("province", "keys", "rotate", "--token", token, env=p44.env)
    assert "new key" in rotated.stdout
    listed = run_tmis("province", "keys", "list", env=p44.env).stdout
    assert "not listed" in listed and "signs" in listed
    done = _sync(p44)
    assert "re-signed with the current key: batches [1]" in done.stdout
    with nat.connect() as c:
        stored = c.execute(select(Batch.batch_hash, Batch.data).where(Batch.province_code == "44")).one()
    assert stored.batch_hash == batch_hash  # the same batch, signed by the new key: no equivocation
    assert json.loads(bytes(stored.data).split(b"\n")[0])["signatures"][0]["keyid"] != old.keyid
    assert _count(nat, Evidence) == 0
    effective_teacher(p44, "002")
    _sync(p44)
    _audit(nat_env, tmp_path)


def test_a_province_restored_from_an_older_backup_continues_without_equivocation(fed, tmp_path):
    national, p, nat, nat_env = fed
    p44 = p["44"]
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(1, 4)]
    _sync(p44)
    backup = tmp_path / "p44.backup"
    run_tmis("province", "db", "backup", "-o", str(backup), env=p44.env)
    rename(p44, numbers[0], "备份后一")
    lost_new = effective_teacher(p44, "004")
    _sync(p44)
    rename(p44, numbers[1], "备份后二")
    _sync(p44)
    p44.factory.kw["bind"].dispose()
    run_tmis("province", "db", "restore", str(backup), "--yes", env=p44.env)
    rename(p44, numbers[2], "恢复后")
    first = _sync(p44, check=False)
    assert first.returncode == 1, first.stdout + first.stderr  # partial: the report needs the operators
    assert "RECOVERY REPORT" in first.stderr, first.stdout + first.stderr
    reported = {line.split()[0] for line in first.stderr.splitlines() if line.startswith("  44")}
    assert reported == {numbers[0], numbers[1], lost_new}
    assert "restored_from_backup" in first.stderr
    _sync(p44)  # converged: the next round is ok (reconciliation included)
    assert _count(nat, Evidence) == 0
    with nat.connect() as c:
        name = c.execute(select(TeacherCore.fields).where(TeacherCore.teacher_number == numbers[2])).scalar_one()
    assert name["JBXX"]["XM"] == "恢复后"
    report = json.loads(run_tmis("province", "sync", "recovery", "--json", env=p44.env).stdout)
    assert {r["teacher_number"] for r in report} == reported
    _audit(nat_env, tmp_path)


def test_a_reconciliation_difference_is_found_and_repaired_by_a_reload(fed):
    national, p, nat, nat_env = fed
    p44 = p["44"]
    numbers = [effective_teacher(p44, f"{n:03d}") for n in range(1, 6)]
    assert "teachers match the national store" in _sync(p44).stdout
    with nat.begin() as c:
        c.execute(delete(TeacherCore).where(TeacherCore.teacher_number == numbers[2]))
    found = _sync(p44, check=False)
    assert found.returncode == 1
    assert "reconciliation_mismatch" in found.stderr and f"differs: {numbers[2]}" in found.stderr
    national_view = run_tmis("national", "reconciliations", "--province", "44", "--json", env=nat_env).stdout
    assert json.loads(national_view)[0]["differing"][0]["teacher_number"] == numbers[2]
    run_tmis("province", "sync", "reload", "--teacher", numbers[2], env=p44.env)
    assert "teachers match the national store" in _sync(p44).stdout
    assert _count(nat, TeacherCore, TeacherCore.teacher_number == numbers[2]) == 1
