"""Layering contracts (import-linter) and the purity of sync_protocol, checked the way CI checks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ["common", "sync_protocol", "provincial_node", "national_node"]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": ""},
        timeout=300,
    )


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_contracts_hold_on_the_code_as_it_is(tmp_path):
    proc = _lint(_copy_tree(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("sync_protocol/_bad.py", "import flask\n", "sync_protocol is pure"),
        ("sync_protocol/_bad.py", "import sqlalchemy\n", "sync_protocol is pure"),
        ("sync_protocol/_bad.py", "from common import db\n", "sync_protocol is pure"),
        ("common/_bad.py", "import provincial_node\n", "common knows no node"),
        ("provincial_node/_bad.py", "from national_node import app\n", "never import each other"),
        # inside a node: an area reaching up into the shell, a lower area into a higher one, the sync layer into
        # an area, and a cycle between two modules of one area
        ("provincial_node/accounts/_bad.py", "from provincial_node.api import auth\n", "no area imports the API"),
        ("provincial_node/accounts/_bad.py", "from provincial_node.teacher_files import files\n", "shell above the"),
        ("provincial_node/sync/_bad.py", "from provincial_node.transfers import steps\n", "shell above the"),
        ("provincial_node/transfers/steps.py", "from provincial_node.transfers import local\n", "inside-province flow"),
        ("national_node/inbox/_bad.py", "from national_node.intake import intake\n", "shell above the areas"),
        (
            "provincial_node/teacher_files/history.py",
            "from provincial_node.teacher_files import review\n",
            "no import cycles",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_build(tmp_path, module, line, contract):
    root = _copy_tree(tmp_path)
    path = root / module
    path.write_text((path.read_text(encoding="utf-8") if path.exists() else "") + line, encoding="utf-8")
    proc = _lint(root)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and contract in proc.stdout.replace("\n", " ")


def test_importing_sync_protocol_loads_no_io_framework():
    code = (
        "import sys, sync_protocol, importlib, pkgutil\n"
        "for m in pkgutil.walk_packages(sync_protocol.__path__, 'sync_protocol.'):\n"
        "    if not m.name.endswith('.cli'): importlib.import_module(m.name)\n"
        "bad = [m for m in ('flask', 'sqlalchemy', 'requests', 'apscheduler', 'alembic', 'psycopg',"
        " 'provincial_node', 'national_node', 'common.db', 'common.http') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout.strip() == ""
