"""教师自助: the teacher's own account, created by the school from name, gender, birth date and ID number,
which must match the file. The teacher logs in with the ID number (found through the account's blind index)
or the teacher number, which is the account's username — so no ID number is stored in clear as a username."""

from __future__ import annotations

from common.errors import invalid
from common.identity import IdentityError, validate_identity
from provincial_node.accounts import accounts
from provincial_node.accounts.models import Account, Unit
from provincial_node.context import ProvinceContext, Role
from provincial_node.rules import Operation, authorize
from provincial_node.teacher_files.files import visible_teacher


def create_teacher_account(
    ctx: ProvinceContext,
    teacher_id: int,
    *,
    name: str,
    gender: str,
    birth_date: str,
    id_number: str,
    initial_password: str,
) -> Account:
    """The school's system administrator creates the teacher's self-service account (first-login password
    change, like every new account)."""
    teacher = visible_teacher(ctx, teacher_id, lock=True)
    school = ctx.session.get(Unit, teacher.unit_id)
    authorize(ctx, Operation.TEACHER_ACCOUNT_CREATE, school)
    try:
        info = validate_identity(teacher.doc_type, id_number)
    except IdentityError as e:
        raise invalid("account", "id_number", e.reason_zh, e.reason_en, id_number) from None
    if info.number != teacher.doc_number or name.strip() != teacher.name:
        raise invalid("account", "id_number", "姓名或证件号与档案不一致", "name or ID number differs from the file")
    if info.birth_date and info.birth_date.isoformat() != birth_date:
        raise invalid(
            "account", "birth_date", "出生日期与证件号不一致", "birth date differs from the ID number", birth_date
        )
    if info.gender and gender != info.gender:
        raise invalid("account", "gender", "性别与证件号不一致", "gender differs from the ID number", gender)
    return accounts.create_account(
        ctx,
        username=teacher.teacher_number,
        real_name=name,
        unit=school,
        role=Role.TEACHER,
        password=initial_password,
        id_number=info.number,
        teacher_id=teacher.id,
    )
