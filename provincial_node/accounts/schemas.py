"""Request (In) and response (Out) schemas of the accounts area; the OpenAPI document is built from them."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Strict, id_field
from provincial_node.rules import mask_id_number


class LoginIn(Strict):
    username = ma.fields.String(required=True)
    password = ma.fields.String(required=True, load_only=True)


class PasswordIn(Strict):
    old_password = ma.fields.String(required=True)
    new_password = ma.fields.String(required=True)


class UnitIn(Strict):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(required=True, metadata={"description": "province | city | county | school | department"})
    parent_code = ma.fields.String(load_default=None)
    division_code = ma.fields.String(load_default=None)
    school_type = ma.fields.String(load_default=None)
    urban_rural_type = ma.fields.String(load_default=None)
    sponsor_type = ma.fields.String(load_default=None)
    supervisor_code = ma.fields.String(load_default=None)


class ReviewChainIn(Strict):
    levels = ma.fields.String(required=True, metadata={"description": "county | county,city"})


class AccountIn(Strict):
    username = ma.fields.String(required=True)
    real_name = ma.fields.String(required=True)
    unit_id = id_field(required=True)
    role = ma.fields.String(required=True, metadata={"description": "sysadmin | infoadmin | query | training"})
    password = ma.fields.String(required=True, metadata={"description": "initial password, changed at first login"})
    id_number = ma.fields.String(load_default=None, metadata={"description": "身份证件号 (real-name; required)"})
    phone = ma.fields.String(load_default=None, metadata={"description": "联系电话 (real-name; required)"})
    email = ma.fields.String(load_default=None, metadata={"description": "电子邮箱"})


class AccountActionIn(Strict):
    action = ma.fields.String(
        required=True, metadata={"description": "unlock | reset_password | disable | restore | set_role"}
    )
    reason = ma.fields.String(required=True)
    role = ma.fields.String(load_default=None, metadata={"description": "the new role (set_role)"})


class UnitOut(Out):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    level = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True)
    division_code = ma.fields.String(allow_none=True)
    school_type = ma.fields.String(allow_none=True, metadata={"description": "办学类型"})
    urban_rural_type = ma.fields.String(allow_none=True, metadata={"description": "城乡分类"})
    sponsor_type = ma.fields.String(allow_none=True, metadata={"description": "举办者类型"})
    supervisor_id = ma.fields.Integer(allow_none=True, metadata={"description": "主管教育行政部门"})


class UnitsOut(Out):
    units = ma.fields.List(ma.fields.Nested(UnitOut))


class UnitImportOut(Out):
    created = ma.fields.Integer()
    unchanged = ma.fields.Integer()


class ReviewChainOut(Out):
    stage = ma.fields.String()
    levels = ma.fields.String()


class AccountOut(Out):
    id = ma.fields.Integer()
    username = ma.fields.String()
    real_name = ma.fields.String()
    unit_id = ma.fields.Integer()
    role = ma.fields.String()
    teacher_id = ma.fields.Integer(allow_none=True)
    disabled = ma.fields.Boolean()
    must_change_password = ma.fields.Boolean()
    locked_until = ma.fields.DateTime(allow_none=True)
    id_number = ma.fields.Function(
        lambda a: mask_id_number(a.id_number), metadata={"description": "身份证件号, masked (前6后4)"}
    )
    phone = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)


class AccountActionOut(AccountOut):
    one_time_password = ma.fields.String(
        metadata={"description": "reset_password only: the one-time password, shown once; changed at next login"}
    )


class AccountsOut(Out):
    accounts = ma.fields.List(ma.fields.Nested(AccountOut))


class TokenOut(Out):
    token = ma.fields.String()
    token_type = ma.fields.String()
    must_change_password = ma.fields.Boolean()
    account = ma.fields.Nested(AccountOut)


class MeOut(Out):
    account = ma.fields.Nested(AccountOut)
    unit = ma.fields.Nested(UnitOut)


class RevokedOut(Out):
    revoked = ma.fields.Boolean()


class ChangedOut(Out):
    changed = ma.fields.Boolean()
