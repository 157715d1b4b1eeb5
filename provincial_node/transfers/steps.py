"""The vocabulary both transfer flows share: kinds, states, steps, who decides, and how a request closes.

==================  =======================================================================================
kind                steps after the start
==================  =======================================================================================
transfer            started by the receiving school → receiving bureau → sending school → sending bureau
                    → the file moves to the receiving school with its whole history
rotation            started by the sending school → sending bureau → 交流轮岗 record added, 人员状态
                    "暂未在本单位任职-交流轮岗" (205); the teacher stays with the sending school
rotation_transfer   started by the sending school → sending bureau → receiving school → receiving bureau
                    → 交流轮岗 record, then the file moves as in a transfer
==================  =======================================================================================

A cross-province (跨省) request is held by both provinces: ``side`` says which end this node is (``from``
holds the teacher, ``to`` receives) and each node decides only its own steps (:func:`local_step`); once
every step is decided the request waits for the national node (:data:`Step.COMPLETION`).

Both :mod:`.local` and :mod:`.cross_province` import this module; neither imports the other's internals
the other way round (``local`` → ``cross_province`` → ``steps``).
"""

from __future__ import annotations

import datetime as dt

from common.enums import LabelledStrEnum
from provincial_node.context import Actor
from provincial_node.transfers.models import Transfer
from sync_protocol import transfer as tr


class TransferKind(LabelledStrEnum):
    TRANSFER = "transfer", "调动"
    ROTATION = "rotation", "交流轮岗（不调动人事关系）"
    ROTATION_TRANSFER = "rotation_transfer", "交流轮岗（调动人事关系）"


class TransferStatus(LabelledStrEnum):
    OPEN = "open", "办理中"
    COMPLETED = "completed", "已完成"
    REJECTED = "rejected", "未通过"
    WITHDRAWN = "withdrawn", "已撤回"
    EXPIRED = "expired", "已过期"


class Step(LabelledStrEnum):
    """Steps a request waits for (``next_step``), and the other entries of its trail."""

    RECEIVING_BUREAU = "receiving_bureau", "调入单位主管部门审核"
    SENDING_SCHOOL = "sending_school", "调出学校审核"
    SENDING_BUREAU = "sending_bureau", "调出单位主管部门审核"
    RECEIVING_SCHOOL = "receiving_school", "接收学校审核"
    COMPLETION = "completion", "等待国家节点办结"
    # trail entries that are not steps to wait for
    START = "start", "发起"
    WITHDRAW = "withdraw", "撤回"
    RETURN = "return", "交流轮岗结束返回"
    NATIONAL = "national", "国家节点"


class Side(LabelledStrEnum):
    """This node's end of a cross-province request."""

    FROM = "from", "调出省"
    TO = "to", "调入省"


STEPS: dict[str, list[Step]] = {
    TransferKind.TRANSFER: [Step.RECEIVING_BUREAU, Step.SENDING_SCHOOL, Step.SENDING_BUREAU],
    TransferKind.ROTATION: [Step.SENDING_BUREAU],
    TransferKind.ROTATION_TRANSFER: [Step.SENDING_BUREAU, Step.RECEIVING_SCHOOL, Step.RECEIVING_BUREAU],
}
# the starting province's last own step of a cross-province request: deciding it sends the request
STARTER_LAST = {TransferKind.TRANSFER: Step.RECEIVING_BUREAU, TransferKind.ROTATION_TRANSFER: Step.SENDING_BUREAU}


def is_cross(t: Transfer) -> bool:
    return t.remote_province is not None


def sent(t: Transfer) -> bool:
    """The national node knows this request (it left this node, or came from the other province)."""
    return is_cross(t) and t.transfer_uid is not None


def started_here(t: Transfer) -> bool:
    return (t.role == Side.TO) == (tr.FLOWS[t.kind]["starter"] == Side.TO)


def local_step(t: Transfer, step: str) -> bool:
    """This node decides ``step`` (always, inside the province)."""
    if not is_cross(t):
        return True
    return step.startswith("receiving") == (t.role == Side.TO)


def starter_unit_id(t: Transfer) -> int | None:
    """The unit that started the request: the receiving school of a transfer, else the sending school."""
    return t.to_unit_id if t.kind == TransferKind.TRANSFER else t.from_unit_id


def add_step(
    t: Transfer,
    actor: Actor | None,
    step: str,
    decision: str,
    reason: str | None,
    now: dt.datetime,
    by: str | None = None,
) -> None:
    """Append a decision to the request's trail: an account's, or ``by`` (another province, the national
    node) or the system's."""
    t.steps = [
        *t.steps,
        {
            "step": step,
            "decision": decision,
            "reason": reason,
            "account_id": actor.account_id if actor else None,
            "username": actor.username if actor else (by or "system"),
            "at": now.isoformat(),
        },
    ]


def advance(t: Transfer, step: str) -> None:
    """The request moves past ``step``: to the next step of its kind, or to completion (cross-province: the
    national node completes it)."""
    steps = STEPS[t.kind]
    i = steps.index(Step(step))
    t.next_step = steps[i + 1] if i + 1 < len(steps) else Step.COMPLETION


def close(t: Transfer, status: TransferStatus, now: dt.datetime) -> None:
    """The request ends (completed, rejected, withdrawn, expired): nothing waits any more."""
    t.status, t.finished_at, t.next_step = status, now, None
