"""Every action the code writes to the audit trail has its Chinese name (provincial_node/audit_trail/actions.py),
and every name is of an action the code writes.

The actions are read from the source: the second argument of every ``trail.record(...)`` call (and of
``record(...)`` inside the trail module itself). An action built from values (``f"{t.kind}.{decision}"``) is
expanded with the values those names can hold, taken from the code's own enums; a new placeholder fails the test
until it is named in :data:`PLACEHOLDERS`, and an action passed as a plain variable fails it too."""

from __future__ import annotations

import ast
import itertools
import re

from provincial_node.audit_trail import actions
from provincial_node.audit_trail.actions import ACTIONS, GROUPS
from provincial_node.teacher_files.status import Decision
from provincial_node.transfers.inbound import INBOX_KINDS
from provincial_node.transfers.steps import TransferKind
from sync_protocol.transfer import FLOWS
from tests.conftest import REPO

TRANSFER_KINDS = tuple(TransferKind)
# (module, placeholder as written) → the values it can hold
PLACEHOLDERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("accounts/accounts.py", "action"): ("unlock", "disable", "restore"),  # set_account_state's actions
    ("sharing/applications.py", "decision"): ("approve", "refuse"),
    ("teacher_files/change_requests.py", "decision"): tuple(Decision),
    ("transfers/local.py", "kind"): TRANSFER_KINDS,
    ("transfers/local.py", "t.kind"): TRANSFER_KINDS,
    ("transfers/local.py", "decision"): tuple(Decision),
    ("transfers/inbound.py", "t.kind"): tuple(FLOWS),  # only these cross a province border
    ("transfers/inbound.py", "msg.kind"): INBOX_KINDS,
}


def _written_actions() -> tuple[set[str], list[str]]:
    """(the actions the code can write, the problems found reading it)."""
    root = REPO / "provincial_node"
    found: set[str] = set()
    problems: list[str] = []
    calls = 0
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            is_trail = isinstance(f, ast.Attribute) and f.attr == "record" and ast.unparse(f.value) == "trail"
            is_local = module == "audit_trail/trail.py" and isinstance(f, ast.Name) and f.id == "record"
            if not (is_trail or is_local):
                continue
            calls += 1
            arg = node.args[1] if len(node.args) > 1 else None
            where = f"{module}:{node.lineno}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                parts: list[tuple[str, ...]] = []
                for piece in arg.values:
                    if isinstance(piece, ast.Constant):
                        parts.append((str(piece.value),))
                        continue
                    expr = ast.unparse(piece.value)  # type: ignore[attr-defined]
                    values = PLACEHOLDERS.get((module, expr))
                    if values is None:
                        problems.append(f"{where}: name the values of {{{expr}}} in PLACEHOLDERS")
                        values = ()
                    parts.append(tuple(str(v) for v in values))
                found |= {"".join(p) for p in itertools.product(*parts)}
            else:
                problems.append(f"{where}: the action is not a string literal or an f-string")
    assert calls > 30, f"only {calls} trail.record calls found: is the scan still reading the code?"
    return found, problems


def test_every_action_the_code_writes_has_a_chinese_name_and_every_name_is_used():
    written, problems = _written_actions()
    assert problems == []
    assert sorted(written - set(ACTIONS)) == [], "add these actions to provincial_node/audit_trail/actions.py"
    assert sorted(set(ACTIONS) - written) == [], "names of actions nothing writes: remove them (or the code lost one)"


def test_every_name_is_chinese_and_listed_once():
    pairs = [pair for _group, items in GROUPS for pair in items]
    assert len(pairs) == len(ACTIONS), "an action is listed in two groups"
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert [a for a, name in pairs if not cjk.search(name)] == []
    assert len({name for _a, name in pairs}) == len(pairs), "two actions share a name"


def test_the_transfer_kinds_named_are_the_code_s():
    assert tuple(actions._TRANSFER_KINDS) == tuple(TransferKind)
    assert set(actions._CROSS_PROVINCE_KINDS) == set(FLOWS)
