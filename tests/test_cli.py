"""The ``tmis`` entry point, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json

from sqlalchemy import select

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
    ndkh = next(g for g in data["groups"] if g["code"] == "NDKH")
    assert ndkh["key"] == ["KHND"]
    khnd = next(f for f in ndkh["fields"] if f["code"] == "KHND")
    assert khnd == {**khnd, "label": "考核年度", "type": "year", "required": True, "core": True, "key": True}
    assert {"code": "XM", "label": "姓名"} in data["groups"][0]["core_fields"]


def test_catalogue_show_lists_fields_as_the_readme_says():
    out = run_tmis("catalogue", "show").stdout
    assert "166 fields" in out and "47 core" in out
    assert "NDKH 年度考核 (multi-record, key KHND;" in out
    assert any(line.split()[:2] == ["*★⚷", "KHND"] and "考核年度" in line for line in out.splitlines())
    assert "BXLX" in out and "code tables" in out
    one = run_tmis("catalogue", "show", "--group", "gnpx").stdout
    assert "培训项目名称" in one and "JBXX" not in one
    bad = run_tmis("catalogue", "show", "--group", "NOPE", check=False)
    assert bad.returncode == 2 and "no record group" in bad.stderr


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
        "--second-factor-roles",
        "",
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
        "--second-factor-roles",
        "",
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
        "--second-factor-roles",
        "",
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
    assert "every ID number is encrypted" in run_tmis("province", "data-keys", "reencrypt", env=env).stdout
    assert "new current data key k2" in run_tmis("province", "data-keys", "rotate", env=env).stdout
    status = run_tmis("province", "data-keys", "status", env=env).stdout
    assert "keys k1, k2, current k2" in status and "unprotected rows: 0" in status
    assert ((tmp_path / "p" / "data.key").stat().st_mode & 0o777) == 0o600
    again = run_tmis("province", "data-keys", "init", env=env, check=False)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_a_cli_import_runs_as_a_background_task(tmp_path):
    """tmis province import runs the import as a task in the CLI's process, committed in chunks; a GBK CSV
    from Excel is read; the row errors go to --report."""
    env = {"TMIS_DATA_DIR": str(tmp_path / "p"), "TMIS_PROVINCE_CODE": "44"}
    run_tmis(
        "province", "init", "--province-code", "44", "--admin-username", "gd_admin", "--admin-name", "管理员",
        "--admin-password", "Init-pass-2026", "--second-factor-roles", "", env=env,
    )  # fmt: skip
    _in_process(env, _activate_and_add_a_school)
    tpl = tmp_path / "NDKH.csv"
    run_tmis("province", "template", "--group", "JBXX", "--format", "csv", "-o", str(tpl), env=env)
    rows = tpl.read_text(encoding="utf-8-sig") + _jbxx_line("2144000001") + _jbxx_line("2144000001")  # 2nd: a repeat
    tpl.write_text(rows, encoding="gbk")  # as Excel on Chinese Windows saves it
    cli_env = {**env, "TMIS_PASSWORD": NEW_PASSWORD, "TMIS_IMPORT_CHUNK_ROWS": "1"}
    out = run_tmis(
        "province", "import", str(tpl), "--group", "JBXX", "--school", "2144000001", "--as", "school_info",
        "--report", str(tmp_path / "errors.csv"), env=cli_env, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # one row failed
    assert "2 rows: 1 created, 0 updated, 0 unchanged, 1 failed (task 1, done)" in out.stdout
    assert "第 2 行" in (tmp_path / "errors.csv").read_text(encoding="utf-8-sig")


NEW_PASSWORD = "Changed-pass-2026"


class _in_process:
    """The node of ``env`` opened in this process (to set up what the CLI test needs)."""

    def __init__(self, env, fn=None):
        from provincial_node.app import build_runtime
        from provincial_node.config import config_from_env

        self.rt = build_runtime(config_from_env(env))
        if fn is not None:
            with self as (rt, s):
                fn(rt, s)

    def __enter__(self):
        from common.db import session_scope

        self._scope = session_scope(self.rt.session_factory)
        return self.rt, self._scope.__enter__()

    def __exit__(self, *exc):
        out = self._scope.__exit__(*exc)
        self.rt.engine.dispose()
        return out


def _activate_and_add_a_school(rt, s):
    from provincial_node.accounts import accounts, units
    from provincial_node.accounts.access import actor_for
    from provincial_node.accounts.models import Account

    admin = s.scalar(select(Account).where(Account.username == "gd_admin"))

    accounts.change_password(rt.context(s, actor_for(s, admin)), "Init-pass-2026", NEW_PASSWORD)
    units.import_units_csv(
        rt.context(s),
        "code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code\n"
        "440100,广州市教育局,city,440000,,,,,\n440106,天河区教育局,county,440100,,,,,\n"
        "2144000001,天河区第一小学,school,440106,,211,111,,440106\n",
    )
    school = units.get_unit_by_code(s, "2144000001")
    acc = accounts.create_account(
        rt.context(s),
        username="school_info",
        real_name="学校",
        unit=school,
        role="infoadmin",
        password="Init-pass-2026",
    )
    accounts.change_password(rt.context(s, actor_for(s, acc)), "Init-pass-2026", NEW_PASSWORD)


def _jbxx_line(_school):
    from common.catalogue import load_catalogue
    from provincial_node.teacher_files import sheets
    from tests.factories import GOOD_RECORDS

    group = load_catalogue().group("JBXX")
    rec = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")}
    rec["ZZMMM"] = "01"
    return ",".join(str(rec.get(f.code, "")) for f in sheets.columns(group)) + "\n"
