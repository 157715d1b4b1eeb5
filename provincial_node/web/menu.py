"""The menu of the pages, by the user's role and unit level (五级应用: 学校 / 区县 / 地市 / 省级; 系统管理员 /
信息管理员 / 信息查询员 / 培训管理员 / 教师). An entry shows when the access rules (:mod:`provincial_node.rules`)
let the user do the operation behind its page — the same table the pages and services enforce, so a menu never
leads to a refusal (a test opens every entry as every role)."""

from __future__ import annotations

from dataclasses import dataclass

from provincial_node.context import Actor, Role, UnitLevel
from provincial_node.rules import Operation, may


@dataclass(frozen=True)
class MenuItem:
    label: str
    endpoint: str
    operations: tuple[Operation, ...] = ()  # any of them opens the page; () = every signed-in user
    section: str = ""  # the menu group
    teacher: bool = False  # the teacher's own entries (我的档案); the staff's lists and tools are not a teacher's

    def allows(self, actor: Actor) -> bool:
        if self.teacher or actor.role == Role.TEACHER:
            return self.teacher == (actor.role == Role.TEACHER)
        return not self.operations or any(may(actor, op) for op in self.operations)


MENU: tuple[MenuItem, ...] = (
    MenuItem("首页", "web.home"),
    MenuItem("我的档案", "teacher_files_pages.my_file", section="教师自助", teacher=True),
    MenuItem("教师信息", "teacher_files_pages.teacher_list", (Operation.FILES_LIST,), "信息管理"),
    MenuItem("新教师入职", "teacher_files_pages.register", (Operation.FILE_REGISTER,), "信息管理"),
    MenuItem("审核", "review_pages.review_queue", (Operation.FILE_REVIEW,), "信息管理"),
    MenuItem("变更申请", "review_pages.change_requests", (Operation.CHANGE_REQUESTS_READ,), "信息管理"),
    MenuItem("导入导出", "io_pages.import_export", (Operation.FILES_IMPORT, Operation.FILES_EXPORT), "信息管理"),
    MenuItem("调动与交流轮岗", "transfers_pages.transfer_list", (Operation.TRANSFERS_READ,), "业务管理"),
    MenuItem("单位", "accounts_pages.unit_tree", (Operation.UNITS_READ,), "系统管理"),
    MenuItem("账号管理", "accounts_pages.account_list", (Operation.ACCOUNTS_READ,), "系统管理"),
    MenuItem(
        "开设教师账号", "teacher_files_pages.new_teacher_account", (Operation.TEACHER_ACCOUNT_CREATE,), "系统管理"
    ),
    MenuItem("地方拓展指标", "io_pages.custom_field_list", (Operation.CUSTOM_FIELDS_MANAGE,), "系统管理"),
    MenuItem("通知公告", "notices_pages.notice_admin", (Operation.NOTICES_MANAGE,), "系统管理"),
    MenuItem("数据同步", "ops.sync", (Operation.SYNC_OPERATE,), "系统管理"),
    MenuItem("操作日志", "audit_trail_pages.audit_log", (Operation.AUDIT_READ,), "安全审计"),
    MenuItem("登录日志", "audit_trail_pages.login_log", (Operation.LOGIN_LOG_READ,), "安全审计"),
)


def menu_for(actor: Actor | None) -> list[tuple[str, list[MenuItem]]]:
    """The entries the actor may see, grouped by section (in order)."""
    if actor is None:
        return []
    groups: dict[str, list[MenuItem]] = {}
    for item in MENU:
        if item.endpoint == "web.home" or item.allows(actor):
            groups.setdefault(item.section, []).append(item)
    return list(groups.items())


def level_role_label(actor: Actor) -> str:
    return f"{UnitLevel.label_of(actor.unit_level)} · {Role.label_of(actor.role)}"


__all__ = ["MENU", "MenuItem", "level_role_label", "menu_for"]
