"""Catalogue codes that workflows write themselves (业务流程写入的代码), named once.

Values come from the catalogue's code tables (``data/code_tables/*.csv``); a test checks that every member
here exists in its table with the same label, so a renamed code cannot slip in.
"""

from __future__ import annotations

from common.enums import LabelledStrEnum


class PersonStatus(LabelledStrEnum):
    """人员状态 (code table RYZT) values the workflows set."""

    IN_POST = "100", "在本单位任职"
    ON_ROTATION = "205", "暂未在本单位任职-交流轮岗"
    TRANSFERRED_OUT = "304", "调出"


class WorkUnitNature(LabelledStrEnum):
    """单位性质类别 (code table DWXZ) of a 工作经历 entry the workflows add."""

    SCHOOL = "2", "学校"


TABLE_OF = {PersonStatus: "RYZT", WorkUnitNature: "DWXZ"}
