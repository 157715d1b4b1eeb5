"""States of a teacher file and of a change request, with their Chinese names (档案状态).

::

    draft ──submit──▶ submitted ──school──▶ school_approved ──county──▶ county_approved ──[city]──▶ effective
      ▲                    │                      │                          │
      └──── rejected ◀─────┴──────── reject (with a reason, back to the filler) ┘

A file whose teacher moved to another province (跨省调出) is ``transferred_out``: kept, read-only.
"""

from __future__ import annotations

from common.enums import LabelledStrEnum
from provincial_node.context import UnitLevel


class FileStatus(LabelledStrEnum):
    DRAFT = "draft", "未报送"
    SUBMITTED = "submitted", "已报送，待学校审核"
    SCHOOL_APPROVED = "school_approved", "学校审核通过"
    COUNTY_APPROVED = "county_approved", "区县审核通过"
    CITY_APPROVED = "city_approved", "地市审核通过"
    REJECTED = "rejected", "退回修改"
    EFFECTIVE = "effective", "审核通过（已生效）"
    TRANSFERRED_OUT = "transferred_out", "已跨省调出"


UNDER_REVIEW = (
    FileStatus.SUBMITTED,
    FileStatus.SCHOOL_APPROVED,
    FileStatus.COUNTY_APPROVED,
    FileStatus.CITY_APPROVED,
)
SUBMITTABLE = (FileStatus.DRAFT, FileStatus.REJECTED)

# which level approved last, for each "approved" state, and back
_APPROVED_BY = {
    UnitLevel.SCHOOL: FileStatus.SCHOOL_APPROVED,
    UnitLevel.COUNTY: FileStatus.COUNTY_APPROVED,
    UnitLevel.CITY: FileStatus.CITY_APPROVED,
}
_LAST_APPROVER = {status: level for level, status in _APPROVED_BY.items()}


def approved_by(level: str) -> FileStatus:
    """The state of a file once ``level`` approved it and a later level still reviews."""
    return _APPROVED_BY[UnitLevel(level)]


def last_approver(status: str) -> UnitLevel | None:
    """The level that approved a file in ``status`` last (None: submitted, nobody yet)."""
    return _LAST_APPROVER.get(FileStatus(status))


class Decision(LabelledStrEnum):
    APPROVE = "approve", "通过"
    REJECT = "reject", "退回"


class ChangeRequestStatus(LabelledStrEnum):
    PENDING = "pending", "待审核"
    APPROVED = "approved", "已批准"
    REJECTED = "rejected", "未批准"


class HistoryAction(LabelledStrEnum):
    """What a line of a file's version history records (变更记录)."""

    REGISTER = "register", "新教师入职建档"
    EDIT = "edit", "修改"
    SUBMIT = "submit", "报送"
    APPROVE = "approve", "审核通过"
    REJECT = "reject", "退回"
    EFFECTIVE = "effective", "生效"
    CHANGE_REQUEST = "change_request", "变更申请批准"
    TRANSFER = "transfer", "调动"
    ROTATION = "rotation", "交流轮岗"
    ROTATION_TRANSFER = "rotation_transfer", "交流轮岗（调动人事关系）"
    ROTATION_END = "rotation_end", "交流轮岗结束"
    TRANSFER_IN = "transfer_in", "跨省调入"
    TRANSFER_OUT = "transfer_out", "跨省调出"
