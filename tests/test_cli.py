"""The ``tmis`` entry point, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json

from tests.conftest import run_tmis
from tests.factories import resident_id


def test_groups_are_discovered():
    out = run_tmis("--help").stdout
    for group in ("province", "national", "audit", "catalogue"):
        assert group in out


def test_catalogue_show_json():
    data = json.loads(run_tmis("catalogue", "show", "--json").stdout)
    assert len(data["groups"]) == 17
    assert data["code_tables"]["BXLX"]["codes"] >= 50


def test_db_upgrade_current_and_check(tmp_path):
    for node in ("province", "national"):
        env = {"TMIS_DATA_DIR": str(tmp_path / node)}
        assert "at revision" in run_tmis(node, "db", "upgrade", env=env).stdout
        assert "no drift" in run_tmis(node, "db", "check", env=env).stdout
        current = run_tmis(node, "db", "current", env=env).stdout.split()
        assert current[0] == "database:" and current[1] == current[-1]  # database at the code's head


def test_bad_config_is_reported_with_the_variable_and_exit_2(tmp_path):
    proc = run_tmis(
        "province",
        "db",
        "upgrade",
        check=False,
        env={"TMIS_DATA_DIR": str(tmp_path), "TMIS_DATABASE_URL": "oracle://x"},
    )
    assert proc.returncode == 2
    assert "config_invalid" in proc.stderr and "TMIS_DATABASE_URL" in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_province_init_import_export_cli(tmp_path):
    env = {"TMIS_DATA_DIR": str(tmp_path / "p"), "TMIS_PROVINCE_CODE": "44"}
    out = run_tmis(
        "province",
        "init",
        "--province-code",
        "44",
        "--admin-username",
        "gd_admin",
        "--admin-name",
        "管理员",
        "--admin-password",
        "Init-pass-2026",
        env=env,
    ).stdout
    assert "initialised provincial node 44" in out
    assert ((tmp_path / "p" / "node.key").stat().st_mode & 0o777) == 0o600
    again = run_tmis(
        "province",
        "init",
        "--province-code",
        "44",
        "--admin-username",
        "gd_admin",
        "--admin-name",
        "x",
        "--admin-password",
        "Init-pass-2026",
        env=env,
        check=False,
    )
    assert again.returncode == 2 and "already holds an initialised node" in again.stderr
    run_tmis("province", "template", "--group", "JBXX", "--format", "xlsx", "-o", str(tmp_path / "t.xlsx"), env=env)
    assert (tmp_path / "t.xlsx").stat().st_size > 1000
    assert ((tmp_path / "p" / "data.key").stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "p").stat().st_mode & 0o777) == 0o700  # the data directory, and its files 0600
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in (tmp_path / "p").iterdir() if f.is_file())
    bad = run_tmis(
        "province",
        "export",
        "--unit",
        "440000",
        "--as",
        "nobody",
        "--reason",
        "x",
        "-o",
        str(tmp_path / "e.xlsx"),
        env=env,
        check=False,
        input="Some-password-1\n",
    )
    assert bad.returncode == 2 and "wrong username or password" in bad.stderr  # one answer for unknown users
    _add_infoadmin(env, "gd_info")
    export = ["province", "export", "--unit", "440000", "--as", "gd_info", "--reason", "备份核对"]
    export += ["-o", str(tmp_path / "e.xlsx")]
    no_credential = run_tmis(*export, env=env, check=False)  # acting as a user needs that user's password
    assert no_credential.returncode != 0 and not (tmp_path / "e.xlsx").exists()
    wrong = run_tmis(*export, env=env, check=False, input="Wrong-password-1\n")
    assert wrong.returncode == 2 and "wrong username or password" in wrong.stderr
    first = run_tmis(*export, env=env, check=False, input="Init-pass-2026\n")
    assert first.returncode == 2 and "must change the password" in first.stderr
    run_tmis(
        "province", "password", "--as", "gd_info", env=env, input="Init-pass-2026\nNew-pass-2026x\nNew-pass-2026x\n"
    )
    run_tmis(*export, env=env, input="New-pass-2026x\n")
    assert (tmp_path / "e.xlsx").stat().st_size > 1000
    as_sysadmin = run_tmis(*export[:5], "gd_admin", *export[6:], env=env, check=False, input="Init-pass-2026\n")
    assert as_sysadmin.returncode == 2  # must change the password first, and then: no teacher data for sysadmins


def _add_infoadmin(env: dict[str, str], username: str) -> None:
    """An information administrator of the province unit, created through the services (there is no account
    command in the CLI): the province's system administrator creates it."""
    from common.db import session_scope
    from provincial_node.accounts import accounts, units
    from provincial_node.accounts.access import actor_for
    from provincial_node.accounts.models import Account
    from provincial_node.app import build_runtime
    from provincial_node.config import config_from_env

    rt = build_runtime(config_from_env(env))
    with session_scope(rt.session_factory) as s:
        admin = actor_for(s, s.query(Account).filter_by(username="gd_admin").one())
        accounts.create_account(
            rt.context(s, admin),
            username=username,
            real_name="信息管理员",
            unit=units.get_unit_by_code(s, "440000"),
            role="infoadmin",
            password="Init-pass-2026",
            id_number=resident_id("440106", "19800101", "123"),
            phone="13800138000",
        )
    rt.engine.dispose()


def test_audit_verify_and_the_data_key_commands(tmp_path):
    import sqlite3

    env = {"TMIS_DATA_DIR": str(tmp_path / "p"), "TMIS_PROVINCE_CODE": "44"}
    run_tmis(
        "province",
        "init",
        "--province-code",
        "44",
        "--admin-username",
        "gd_admin",
        "--admin-name",
        "管理员",
        "--admin-password",
        "Init-pass-2026",
        env=env,
    )
    assert "OK audit chain intact" in run_tmis("province", "audit", "verify", env=env).stdout
    db = sqlite3.connect(tmp_path / "p" / "province.sqlite")
    db.execute("DROP TRIGGER audit_event_no_update")  # what someone with the database file could do
    db.execute("UPDATE audit_event SET reason = 'nothing to see' WHERE seq = 1")
    db.commit()
    db.close()
    tampered = run_tmis("province", "audit", "verify", env=env, check=False)
    assert tampered.returncode == 1 and "FAIL seq 1: edited" in tampered.stdout
    assert "every ID number is encrypted" in run_tmis("province", "keys", "reencrypt", env=env).stdout
    assert "new current data key k2" in run_tmis("province", "keys", "rotate", env=env).stdout
    status = run_tmis("province", "keys", "status", env=env).stdout
    assert "keys k1, k2, current k2" in status and "unprotected rows: 0" in status
    assert ((tmp_path / "p" / "data.key").stat().st_mode & 0o777) == 0o600
    again = run_tmis("province", "keys", "init", env=env, check=False)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
