"""String enums that carry a Chinese label (状态名称) beside their stored value.

A state, role or operation kind is stored as its short English value (``"effective"``) and shown to users
by its label (``"已生效"``)::

    class FileStatus(LabelledStrEnum):
        DRAFT = "draft", "未报送"

    FileStatus.DRAFT == "draft"          # a str: compares with what the database returns
    FileStatus("draft").label == "未报送"  # the label for pages and reports

Pure (standard library only), so every layer may use it.
"""

from __future__ import annotations

import enum
from typing import Any


class LabelledStrEnum(enum.StrEnum):
    """A :class:`enum.StrEnum` whose members are declared as ``NAME = "value", "中文名称"``."""

    label: str

    def __new__(cls, value: str, label: str = "") -> Any:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value
        return member

    @classmethod
    def label_of(cls, value: str | None) -> str:
        """The label of a stored value; an unknown value is shown as it is (never an error on a page)."""
        if value is None:
            return ""
        try:
            return cls(value).label
        except ValueError:
            return str(value)

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """``[(value, label)]`` in declaration order, for pickers and documentation."""
        return [(m.value, m.label) for m in cls]
