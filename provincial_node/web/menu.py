"""The menu of the pages, by the user's role and unit level (五级应用: 学校 / 区县 / 地市 / 省级; 系统管理员 /
信息管理员 / 信息查询员 / 培训管理员 / 教师). A menu entry only shows what the user may open; the services still
decide every action (a hidden link is a convenience, not a rule)."""

from __future__ import annotations

from dataclasses import dataclass

from provincial_node.context import BUREAU_LEVELS, SCHOOL_LEVELS, Actor, Role, UnitLevel

ALL_LEVELS = tuple(UnitLevel)
ADMINS = (Role.SYSADMIN, Role.INFOADMIN)


@dataclass(frozen=True)
class MenuItem:
    label: str
    endpoint: str
    roles: tuple[Role, ...]
    levels: tuple[UnitLevel, ...] = ALL_LEVELS
    section: str = ""  # the menu group

    def allows(self, actor: Actor) -> bool:
        return actor.role in self.roles and actor.unit_level in self.levels


MENU: tuple[MenuItem, ...] = (
    MenuItem("首页", "web.home", tuple(Role)),
    MenuItem("我的档案", "teacher_files_pages.my_file", (Role.TEACHER,), section="教师自助"),
    MenuItem(
        "教师信息", "teacher_files_pages.teacher_list", (Role.INFOADMIN, Role.QUERY, Role.SYSADMIN), section="信息管理"
    ),
    MenuItem("新教师入职", "teacher_files_pages.register", (Role.INFOADMIN,), SCHOOL_LEVELS, section="信息管理"),
    MenuItem("审核", "review_pages.review_queue", (Role.INFOADMIN,), section="信息管理"),
    MenuItem("变更申请", "review_pages.change_requests", (Role.INFOADMIN,), section="信息管理"),
    MenuItem("导入导出", "io_pages.import_export", (Role.INFOADMIN, Role.QUERY), section="信息管理"),
    MenuItem("调动与交流轮岗", "transfers_pages.transfer_list", (Role.INFOADMIN,), section="业务管理"),
    MenuItem("单位", "accounts_pages.unit_tree", (Role.SYSADMIN, Role.INFOADMIN, Role.QUERY), section="系统管理"),
    MenuItem("账号管理", "accounts_pages.account_list", (Role.SYSADMIN,), section="系统管理"),
    MenuItem("地方拓展指标", "io_pages.custom_field_list", ADMINS, (UnitLevel.PROVINCE,), section="系统管理"),
    MenuItem("通知公告", "notices_pages.notice_admin", ADMINS, (UnitLevel.PROVINCE,), section="系统管理"),
    MenuItem("数据同步", "ops.sync", ADMINS, (UnitLevel.PROVINCE,), section="系统管理"),
)


def menu_for(actor: Actor | None) -> list[tuple[str, list[MenuItem]]]:
    """The entries the actor may see, grouped by section (in order)."""
    if actor is None:
        return []
    groups: dict[str, list[MenuItem]] = {}
    for item in MENU:
        if item.allows(actor):
            groups.setdefault(item.section, []).append(item)
    return list(groups.items())


def level_role_label(actor: Actor) -> str:
    return f"{UnitLevel.label_of(actor.unit_level)} · {Role.label_of(actor.role)}"


__all__ = ["BUREAU_LEVELS", "MENU", "MenuItem", "level_role_label", "menu_for"]
