"""Request (In) and response (Out) schemas of the teacher-file area; the OpenAPI document is built from them."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Query, Strict, count_field, id_field

FORMATS = ("xlsx", "csv")


class TeacherQuery(Query):
    status = ma.fields.String(load_default=None)
    unit_id = id_field(query=True, load_default=None)
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))
    offset = count_field(query=True, load_default=0)


class TeacherIn(Strict):
    school_id = id_field(required=True)
    basic = ma.fields.Dict(required=True, metadata={"description": "基本信息 fields; XM, SFZJLXM, SFZJH required"})


class TeacherAccountIn(Strict):
    name = ma.fields.String(required=True)
    gender = ma.fields.String(required=True)
    birth_date = ma.fields.String(required=True)
    id_number = ma.fields.String(required=True)
    initial_password = ma.fields.String(required=True)


class ReviewIn(Strict):
    decision = ma.fields.String(required=True, metadata={"description": "approve | reject"})
    reason = ma.fields.String(load_default=None)


class BulkApproveIn(Strict):
    unit_id = id_field(load_default=None, allow_none=True)
    reason = ma.fields.String(load_default=None)


class ChangeIn(Strict):
    group = ma.fields.String(required=True)
    index = count_field(load_default=None, allow_none=True)
    field = ma.fields.String(required=True)
    new = ma.fields.Raw(required=True, allow_none=True)


class ChangeRequestIn(Strict):
    changes = ma.fields.List(ma.fields.Nested(ChangeIn), required=True)
    reason = ma.fields.String(required=True)


class ChangeRequestQuery(Query):
    status = ma.fields.String(load_default=None, metadata={"description": "pending (default) | approved | rejected"})


class ChangeDecisionIn(Strict):
    decision = ma.fields.String(required=True, metadata={"description": "approve | reject"})
    reason = ma.fields.String(load_default="")


class CustomFieldIn(Strict):
    group_code = ma.fields.String(required=True)
    code = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    label_en = ma.fields.String(load_default="")
    type = ma.fields.String(required=True)
    code_table = ma.fields.String(load_default=None)
    codes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), load_default=None)
    required = ma.fields.Boolean(load_default=False)
    filled_by = ma.fields.String(load_default="school")
    stages = ma.fields.List(ma.fields.String(), load_default=None)
    max_length = ma.fields.Integer(strict=True, load_default=None, validate=ma.validate.Range(1, 10_000))


class RetireIn(Strict):
    reason = ma.fields.String(required=True)


class FormatQuery(Query):
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(FORMATS))


class ImportQuery(FormatQuery):
    school_id = id_field(query=True, required=True)


class ExportIn(Strict):
    unit_id = id_field(required=True)
    reason = ma.fields.String(required=True)
    groups = ma.fields.List(ma.fields.String(), load_default=None)
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(FORMATS))


class TeacherSummaryOut(Out):
    id = ma.fields.Integer()
    teacher_number = ma.fields.String(metadata={"description": "教师编号 (immutable)"})
    name = ma.fields.String()
    unit_id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "file status (FileStatus)"})
    file_version = ma.fields.Integer()
    rejection_reason = ma.fields.String(allow_none=True)


class TeacherOut(TeacherSummaryOut):
    data = ma.fields.Dict(metadata={"description": "the effective file, by record group"})
    draft = ma.fields.Dict(metadata={"description": "the working copy, by record group"})


class TeachersOut(Out):
    teachers = ma.fields.List(ma.fields.Nested(TeacherSummaryOut))


class HistoryOut(Out):
    at = ma.fields.DateTime()
    actor_id = ma.fields.Integer(allow_none=True)
    action = ma.fields.String()
    status_from = ma.fields.String(allow_none=True)
    status_to = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    changes = ma.fields.List(ma.fields.Dict(), metadata={"description": "[{group, index, field, old, new}]"})
    entered_by = ma.fields.List(
        ma.fields.Integer(), allow_none=True, metadata={"description": "approvals: the accounts that entered it"}
    )


class HistoryListOut(Out):
    history = ma.fields.List(ma.fields.Nested(HistoryOut))


class ChangeRequestOut(Out):
    id = ma.fields.Integer()
    teacher_id = ma.fields.Integer()
    status = ma.fields.String()
    reason = ma.fields.String()
    changes = ma.fields.List(ma.fields.Dict())
    requested_by = ma.fields.Integer()
    requested_at = ma.fields.DateTime()
    decided_by = ma.fields.Integer(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)


class ChangeRequestsOut(Out):
    change_requests = ma.fields.List(ma.fields.Nested(ChangeRequestOut))


class CustomFieldOut(Out):
    id = ma.fields.Integer()
    group_code = ma.fields.String()
    code = ma.fields.String()
    label = ma.fields.String()
    type = ma.fields.String()
    code_table = ma.fields.String(allow_none=True)
    codes = ma.fields.Dict(allow_none=True)
    required = ma.fields.Boolean()
    filled_by = ma.fields.String()
    stages = ma.fields.List(ma.fields.String(), allow_none=True)
    retired = ma.fields.Function(lambda f: f.retired_at is not None)


class CustomFieldsOut(Out):
    custom_fields = ma.fields.List(ma.fields.Nested(CustomFieldOut))


class CatalogueFieldOut(Out):
    code = ma.fields.String()
    label = ma.fields.String()
    type = ma.fields.String()
    code_table = ma.fields.String(allow_none=True)
    required = ma.fields.Boolean()
    filled_by = ma.fields.String()
    core = ma.fields.Boolean()
    custom = ma.fields.Boolean()
    retired = ma.fields.Boolean()


class CatalogueGroupOut(Out):
    code = ma.fields.String()
    label = ma.fields.String()
    multiple = ma.fields.Boolean()
    stages = ma.fields.Function(lambda g: sorted(g.stages))
    fields = ma.fields.List(ma.fields.Nested(CatalogueFieldOut))


class CatalogueOut(Out):
    version = ma.fields.String()
    custom_version = ma.fields.String(allow_none=True)
    groups = ma.fields.Function(lambda c: CatalogueGroupOut(many=True).dump(c.ordered_groups))


class ImportErrorOut(Out):
    row = ma.fields.Integer(allow_none=True)
    column = ma.fields.String(allow_none=True)
    field = ma.fields.String()
    value = ma.fields.Raw(allow_none=True)
    reason_zh = ma.fields.String()
    reason_en = ma.fields.String()


class ImportResultOut(Out):
    group = ma.fields.String()
    rows = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()
    failed = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Nested(ImportErrorOut))


class BulkApproveOut(Out):
    approved = ma.fields.Integer()
    considered = ma.fields.Integer()
    skipped_own_entries = ma.fields.Integer(
        metadata={"description": "files this account entered or changed: another reviewer approves them"}
    )
