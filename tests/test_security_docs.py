"""docs/security.md carries the access table generated from the data (provincial_node/rules.py)."""

from __future__ import annotations

from provincial_node.rules import RULES, Operation, markdown_table
from tests.conftest import REPO


def test_the_access_table_in_the_docs_is_the_table_in_the_code():
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    begin, end = "<!-- access-table:begin -->\n", "<!-- access-table:end -->"
    assert doc[doc.index(begin) + len(begin) : doc.index(end)] == markdown_table(), (
        "regenerate the table in docs/security.md from provincial_node.rules.markdown_table()"
    )


def test_every_operation_has_a_line_and_the_docs_name_every_level3_control():
    table = markdown_table()
    assert all(f"`{op}`" in table for op in Operation if RULES.get(op))
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    for control in (
        "身份鉴别",
        "访问控制",
        "安全审计",
        "入侵防范",
        "数据完整性",
        "数据保密性",
        "数据备份恢复",
        "个人信息保护",
    ):
        assert f"| {control}" in doc
