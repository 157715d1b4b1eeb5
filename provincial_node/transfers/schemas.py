"""Request (In) and response (Out) schemas of transfers and exchange rotation."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Query, Strict, id_field

MONTH = ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="应为 YYYY-MM 格式的年月 (YYYY-MM)")


class TransferQuery(Query):
    status = ma.fields.String(load_default=None)


class TransferIn(Strict):
    teacher_number = ma.fields.String(required=True)
    doc_type = ma.fields.String(required=True)
    doc_number = ma.fields.String(required=True)
    to_school_id = id_field(required=True)
    reason = ma.fields.String(required=True)
    from_province = ma.fields.String(
        load_default=None,
        metadata={
            "description": "the province holding the teacher (default: this one if it holds the number, "
            "else the teacher number's prefix); another province's teacher is requested via the national node"
        },
    )


class RotationIn(Strict):
    teacher_id = id_field(required=True)
    with_transfer = ma.fields.Boolean(required=True, metadata={"description": "是否调动人事关系"})
    rotation_type = ma.fields.String(required=True, metadata={"description": "交流轮岗类型 (JLLGLX)"})
    start_month = ma.fields.String(required=True, validate=MONTH)
    end_month = ma.fields.String(load_default=None, validate=MONTH)
    reason = ma.fields.String(required=True)
    to_school_id = id_field(load_default=None, allow_none=True)
    to_unit_name = ma.fields.String(load_default=None)
    to_province = ma.fields.String(load_default=None, metadata={"description": "跨省: the receiving province"})
    to_school_code = ma.fields.String(
        load_default=None, metadata={"description": "跨省: the receiving school's 学校标识码 (with to_unit_name)"}
    )


class TransferDecisionIn(Strict):
    decision = ma.fields.String(required=True, metadata={"description": "approve | reject"})
    reason = ma.fields.String(load_default=None)


class WithdrawIn(Strict):
    reason = ma.fields.String(required=True)


class StepOut(Out):
    step = ma.fields.String()
    decision = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    account_id = ma.fields.Integer(allow_none=True)
    username = ma.fields.String()
    at = ma.fields.String()


class OtherSchoolOut(Out):
    code = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)


class CrossProvinceOut(Out):
    transfer_id = ma.fields.String(attribute="transfer_uid", allow_none=True)
    role = ma.fields.String()
    other_province = ma.fields.String(attribute="remote_province")
    teacher_number = ma.fields.String(allow_none=True)
    other_school = ma.fields.Function(lambda t: {"code": t.remote_school_code, "name": t.remote_school_name})


class TransferOut(Out):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "transfer | rotation | rotation_transfer"})
    teacher_id = ma.fields.Integer(allow_none=True)
    from_unit_id = ma.fields.Integer(allow_none=True)
    to_unit_id = ma.fields.Integer(allow_none=True)
    to_unit_name = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    next_step = ma.fields.String(allow_none=True)
    rotation_type = ma.fields.String(allow_none=True)
    start_month = ma.fields.String(allow_none=True)
    end_month = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    started_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
    steps = ma.fields.List(ma.fields.Nested(StepOut))
    cross_province = ma.fields.Function(
        lambda t: CrossProvinceOut().dump(t) if t.remote_province is not None else None,
        metadata={"description": "null inside the province"},
    )


class TransfersOut(Out):
    transfers = ma.fields.List(ma.fields.Nested(TransferOut))
