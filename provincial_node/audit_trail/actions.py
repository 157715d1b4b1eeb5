"""The names users read for what the audit trail (操作日志) records: every action, by group, in Chinese; the kinds
of object an event concerns; the login channels.

Every action string a service passes to :func:`provincial_node.audit_trail.trail.record` has its name here
(``tests/provincial/audit_trail/test_audit_actions.py`` reads the code and checks it, the actions built from a
transfer's kind and a decision included). The pages show the name; the API gives both. An action not in the table
(written by an older version) is shown as it is stored, never refused on output; as a *filter* only the actions
listed here are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

# the transfer kinds (provincial_node.transfers.steps.TransferKind; audit_trail sits below transfers, so they are
# named here, and the coverage test compares the two)
_TRANSFER_KINDS = {"transfer": "调动", "rotation": "交流轮岗", "rotation_transfer": "交流轮岗（调动人事关系）"}
_CROSS_PROVINCE_KINDS = ("transfer", "rotation_transfer")  # sync_protocol.transfer.FLOWS


def _transfers() -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for kind, name in _TRANSFER_KINDS.items():
        out += [
            (f"{kind}.start", f"发起{name}"),
            (f"{kind}.approve", f"{name}审核通过"),
            (f"{kind}.reject", f"{name}审核不通过"),
            (f"{kind}.withdraw", f"撤回{name}"),
        ]
    for kind in _CROSS_PROVINCE_KINDS:
        name = _TRANSFER_KINDS[kind]
        out += [
            (f"{kind}.transfer_request", f"收到跨省{name}申请"),
            (f"{kind}.transfer_answer", f"收到跨省{name}对方省份的答复"),
            (f"{kind}.transfer_closed", f"跨省{name}已关闭（国家节点）"),
            (f"{kind}.transfer_completion", f"跨省{name}办结（国家节点）"),
        ]
    out.append(("rotation.end", "交流轮岗结束返回"))
    return tuple(out)


# (group, ((action, name), ...)) in the order the action picker lists them
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "预警",
        (("alert.read_volume", "查阅档案过多预警"),),
    ),
    (
        "账号",
        (
            ("account.create", "开设账号"),
            ("account.unlock", "解锁账号"),
            ("account.disable", "停用账号"),
            ("account.restore", "恢复账号"),
            ("account.reset_password", "重置密码"),
            ("account.role", "变更角色"),
            ("account.password_changed", "修改密码"),
            ("account.locked", "登录失败过多，账号锁定"),
        ),
    ),
    (
        "安全密钥",
        (
            ("second_factor.policy", "设置须使用安全密钥的角色"),
            ("second_factor.enrolment_code", "发放安全密钥登记码"),
            ("second_factor.enrol", "登记安全密钥"),
            ("second_factor.use", "安全密钥验证通过"),
            ("second_factor.refused", "安全密钥验证未通过"),
            ("second_factor.recovery_code", "使用恢复码"),
            ("second_factor.revoke", "注销安全密钥"),
        ),
    ),
    (
        "教师档案",
        (
            ("file.read", "查看档案"),
            ("files.import", "批量导入"),
            ("files.export", "导出档案"),
            ("files.duplicate_identity", "证件号已在本省建档（重复建档被拒绝）"),
            ("identity.duplicate_notice", "国家节点通知：跨省一人多号"),
            ("review.approve", "审核通过"),
            ("review.reject", "审核退回"),
            ("change_request.create", "提出变更申请"),
            ("change_request.approve", "批准变更申请"),
            ("change_request.reject", "不批准变更申请"),
            ("custom_field.define", "新增地方拓展指标"),
            ("custom_field.retire", "停用地方拓展指标"),
        ),
    ),
    ("调动与交流轮岗", _transfers()),
    (
        "信息共享",
        (
            ("sharing.apply", "提出共享申请"),
            ("sharing.approve", "同意共享申请"),
            ("sharing.refuse", "不同意共享申请"),
            ("sharing.export", "按授权导出共享数据"),
        ),
    ),
    (
        "系统",
        (
            ("node.init", "节点初始化"),
            ("units.import", "导入单位树"),
            ("notice.publish", "发布通知公告"),
            ("notice.withdraw", "撤下通知公告"),
            ("sync.reload", "全部档案重新同步"),
            ("sync.resend_parked", "重新发送暂存记录"),
        ),
    ),
    (
        "安全审计",
        (
            ("audit.download", "下载操作日志"),
            ("login_log.download", "下载登录日志"),
        ),
    ),
)

ACTIONS: Mapping[str, str] = {action: name for _group, items in GROUPS for action, name in items}

TARGET_TYPES: Mapping[str, str] = {
    "teacher": "教师档案",
    "account": "账号",
    "unit": "单位",
    "transfer": "调动与交流轮岗申请",
    "change_request": "变更申请",
    "sharing_application": "共享申请",
    "custom_field": "地方拓展指标",
    "notice": "通知公告",
    "node": "节点",
    "log": "日志",
}

# the keys of an event's details, as the pages name them (others are shown as they are stored)
DETAIL_NAMES: Mapping[str, str] = {
    "username": "用户名",
    "role": "角色",
    "old": "原角色",
    "new": "新角色",
    "reviewer": "审核人",
    "entered_by": "填报人",
    "address": "地址",
    "view": "查看内容",
    "teacher": "教师编号",
    "reads": "一小时内查看档案数",
    "limit": "上限",
    "window": "时间窗",
    "account_unit": "账号所在单位",
    "groups": "信息类",
    "teachers": "教师人数",
    "format": "格式",
    "key": "密钥",
    "level": "审核层级",
    "title": "标题",
    "applicant": "申请单位",
    "units": "单位",
    "fields": "字段",
    "attempted_at": "尝试建档的学校",
    "existing_at": "已建档的单位",
    "existing_name": "已建档的单位名称",
    "from_province": "调出省份",
    "transfer_id": "跨省申请编号",
    "inbox_seq": "收件序号",
    "group": "信息类",
    "rows": "行数",
    "created": "新增",
    "updated": "更新",
    "unchanged": "未变",
    "failed": "出错",
    "encoding": "编码",
    "task": "后台任务",
    "count": "人数",
    "version": "版本",
    "admin": "管理员",
    "key_id": "签名密钥",
    "late": "逾期",
    "share_class": "共享类别",
    "codes_left": "尚有恢复码",
    "other": "其他省份的编号",
    "filters": "筛选条件",
    "since": "开始时间",
    "until": "结束时间",
    "unit_id": "单位编号",
    "outcome": "结果",
    "channel": "登录方式",
    "action": "操作",
}
# values of some details, as the pages name them
DETAIL_VALUES: Mapping[str, Mapping[str, str]] = {
    "view": {"full": "完整档案", "basic": "基本信息", "history": "变更记录"},
}


def action_label(action: str) -> str:
    """The Chinese name of an action (the stored string when it has none)."""
    return ACTIONS.get(action, action)


def target_label(target_type: str) -> str:
    return TARGET_TYPES.get(target_type, target_type)
