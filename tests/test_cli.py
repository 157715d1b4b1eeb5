"""The ``tmis`` entry point, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.conftest import run_tmis


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
    export = ("province", "export", "--unit", "440000", "--reason", "备份核对", "-o", str(tmp_path / "e.xlsx"))
    bad = run_tmis(*export, "--as", "nobody", env={**env, "TMIS_PASSWORD": "x"}, check=False)
    assert bad.returncode == 2 and "nobody" in bad.stderr and "wrong username or password" in bad.stderr
    wrong = run_tmis(*export, "--as", "gd_admin", env={**env, "TMIS_PASSWORD": "Not-the-password-1"}, check=False)
    assert wrong.returncode == 2 and "wrong username or password" in wrong.stderr  # the CLI needs the credentials
    first = run_tmis(*export, "--as", "gd_admin", env={**env, "TMIS_PASSWORD": "Init-pass-2026"}, check=False)
    assert first.returncode == 2 and "change the initial password first" in first.stderr
    _in_process(env, _activate_and_add_a_school)
    run_tmis(*export, "--as", "gd_admin", env={**env, "TMIS_PASSWORD": NEW_PASSWORD})
    assert (tmp_path / "e.xlsx").stat().st_size > 1000
    with _in_process(env) as (rt, s):  # a success resets the failure count, as a login does
        from provincial_node.accounts.models import Account

        assert s.scalar(select(Account).where(Account.username == "gd_admin")).failed_logins == 0  # reset by success
    # a CLI import runs as a background task in the CLI's process, committed in chunks
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

    admin = accounts.check_credentials(rt.context(s), "gd_admin", "Init-pass-2026")
    from provincial_node.accounts.access import actor_for

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
    from provincial_node.teacher_files import importexport
    from tests.factories import GOOD_RECORDS

    group = load_catalogue().group("JBXX")
    rec = {k: v for k, v in GOOD_RECORDS["JBXX"].items() if k not in ("XRGWLBM", "XRGWDJM", "XRZYJSZWM", "RYZTM")}
    rec["ZZMMM"] = "01"
    return ",".join(str(rec.get(f.code, "")) for f in importexport._columns(group)) + "\n"
