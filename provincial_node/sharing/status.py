"""States of a data-sharing application."""

from __future__ import annotations

from common.enums import LabelledStrEnum


class SharingStatus(LabelledStrEnum):
    PENDING = "pending", "待审核"
    APPROVED = "approved", "已同意"
    REFUSED = "refused", "不予同意"
