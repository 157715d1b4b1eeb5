"""Request (In) and response (Out) schemas of the sharing area."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Query, Strict, id_field


class ApplicationIn(Strict):
    purpose = ma.fields.String(required=True, metadata={"description": "使用用途"})
    scenario = ma.fields.String(required=True, metadata={"description": "应用场景"})
    unit_ids = ma.fields.List(id_field(), required=True, metadata={"description": "units (and below)"})
    groups = ma.fields.List(ma.fields.String(), load_default=list, metadata={"description": "whole groups"})
    fields = ma.fields.List(ma.fields.String(), load_default=list, metadata={"description": "GROUP.FIELD"})
    period_from = ma.fields.Date(required=True)
    period_to = ma.fields.Date(required=True)


class DecisionIn(Strict):
    decision = ma.fields.String(required=True, metadata={"description": "approve | refuse"})
    reason = ma.fields.String(load_default=None, metadata={"description": "required for a refusal"})


class ExportQuery(Query):
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(["xlsx", "csv"]))


class ApplicationQuery(Query):
    status = ma.fields.String(load_default=None, metadata={"description": "pending | approved | refused"})


class ApplicationOut(Out):
    id = ma.fields.Integer()
    applicant_unit_id = ma.fields.Integer()
    applied_by = ma.fields.Integer()
    applied_at = ma.fields.DateTime()
    purpose = ma.fields.String()
    scenario = ma.fields.String()
    units = ma.fields.List(ma.fields.Integer())
    fields = ma.fields.List(ma.fields.String())
    share_class = ma.fields.String(metadata={"description": "unconditional | conditional (the strictest asked for)"})
    period_from = ma.fields.Date()
    period_to = ma.fields.Date()
    reviewer_unit_id = ma.fields.Integer(metadata={"description": "the level that owns the data"})
    due_at = ma.fields.DateTime()
    status = ma.fields.String()
    decided_by = ma.fields.Integer(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)


class ApplicationsOut(Out):
    applications = ma.fields.List(ma.fields.Nested(ApplicationOut))


class FieldClassOut(Out):
    group = ma.fields.String()
    field = ma.fields.String()
    label = ma.fields.String()
    share_class = ma.fields.String()
    share_class_label = ma.fields.String()


class FieldClassesOut(Out):
    fields = ma.fields.List(ma.fields.Nested(FieldClassOut))
