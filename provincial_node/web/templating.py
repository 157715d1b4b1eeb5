"""What every template can use: the menu, the acting user, Chinese labels of states and codes, China time,
help links (one per page, to the matching section of the user guide)."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, url_for

from common.chinatime import china_time
from common.divisions import lookup
from common.errors import CatalogueError
from provincial_node.context import Role, UnitLevel, current_context
from provincial_node.sync.models import BatchStatus, MessageStatus, RoundStatus, RoundTrigger
from provincial_node.tasks.status import TaskState
from provincial_node.teacher_files.status import ChangeRequestStatus, FileStatus, HistoryAction
from provincial_node.transfers.steps import Side, Step, TransferKind, TransferStatus
from provincial_node.web.menu import level_role_label, menu_for

LABELS = {
    "FileStatus": FileStatus,
    "ChangeRequestStatus": ChangeRequestStatus,
    "HistoryAction": HistoryAction,
    "TransferStatus": TransferStatus,
    "TransferKind": TransferKind,
    "Step": Step,
    "Side": Side,
    "Role": Role,
    "UnitLevel": UnitLevel,
    "RoundStatus": RoundStatus,
    "TaskState": TaskState,
    "RoundTrigger": RoundTrigger,
    "BatchStatus": BatchStatus,
    "MessageStatus": MessageStatus,
}
# the guide page and section each part of the pages is explained in (docs/guide/<page>.md#<section>)
HELP = {
    "home": ("start", "首页"),
    "login": ("start", "登录"),
    "password": ("start", "修改密码"),
    "second_factor": ("start", "安全密钥"),
    "my_logins": ("start", "我的登录记录"),
    "teachers": ("school", "教师信息"),
    "register": ("school", "新教师入职"),
    "file": ("school", "填报档案"),
    "history": ("school", "变更记录"),
    "review": ("bureau", "审核"),
    "changes": ("bureau", "变更申请"),
    "imports": ("school", "批量导入"),
    "exports": ("bureau", "数据导出"),
    "transfers": ("bureau", "调动与交流轮岗"),
    "units": ("province", "单位"),
    "accounts": ("admin", "账号管理"),
    "custom_fields": ("province", "地方拓展指标"),
    "notices": ("province", "通知公告"),
    "sync": ("province", "数据同步"),
    "audit_log": ("admin", "操作日志"),
    "login_log": ("admin", "登录日志"),
    "self_service": ("teacher", "教师自助"),
}


def label(kind: str, value: Any) -> str:
    return LABELS[kind].label_of(value)


def code_label(table: str, code: Any) -> str:
    """The Chinese label of a catalogue code (``code`` itself when the table does not know it)."""
    if code in (None, ""):
        return ""
    catalogue = current_context().catalogue
    try:
        found = catalogue.table(table).codes.get(str(code))
    except (KeyError, CatalogueError):  # an unknown table shows the raw code, never an error page
        found = None
    return found.label if found else str(code)


def field_value(group: str, field: str, value: Any) -> str:
    """A stored value as users read it: coded values as "code label" (several joined by 、), others as they are;
    empty as 空."""
    if value is None or value == "" or value == []:
        return "空"
    catalogue = current_context().catalogue
    table = None
    if group in catalogue.groups and catalogue.group(group).has_field(field):
        table = catalogue.group(group).field(field).code_table
    values = value if isinstance(value, list) else [value]
    if not table:
        return "、".join(str(v) for v in values)
    return "、".join(f"{v} {code_label(table, v)}" if code_label(table, v) != str(v) else str(v) for v in values)


def step_actor(username: str | None) -> str:
    """Who did a step of a request, as the trail records it: an account here, another province's node, the
    national node, or the system (expiry)."""
    if not username or username == "system":
        return "系统"
    if username == "national node":
        return "国家级节点"
    if username.startswith("province "):
        code = username.removeprefix("province ")
        division = lookup(f"{code}0000") if code.isdigit() and len(code) == 2 else None
        name = division.current_name if division and division.current_name else f"{code} 省"
        return f"{name}（省级节点）"
    return username


def code_options(table: str) -> list[Any]:
    """The codes of a catalogue code table, in order (pickers)."""
    try:
        return list(current_context().catalogue.table(table).codes.values())
    except CatalogueError:
        return []


def help_url(topic: str) -> str:
    page, section = HELP.get(topic, HELP["home"])
    return url_for("web.help", guide=page, _anchor=section)


def install_templating(app: Flask) -> None:
    app.jinja_env.filters["china_time"] = china_time
    app.jinja_env.globals.update(
        label=label,
        code_label=code_label,
        code_options=code_options,
        help_url=help_url,
        field_value=field_value,
        step_actor=step_actor,
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        actor = None
        try:
            actor = current_context().actor
        except RuntimeError:
            actor = None
        account = g.get("page_account")
        return {
            "actor": actor,
            "account": account,
            "menu": menu_for(actor),
            "role_label": level_role_label(actor) if actor else "",
        }
