"""The ``tmis`` entry point, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json

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
    )
    assert bad.returncode == 2 and "nobody" in bad.stderr
    run_tmis(
        "province",
        "export",
        "--unit",
        "440000",
        "--as",
        "gd_admin",
        "--reason",
        "备份核对",
        "-o",
        str(tmp_path / "e.xlsx"),
        env=env,
    )
    assert (tmp_path / "e.xlsx").stat().st_size > 1000
