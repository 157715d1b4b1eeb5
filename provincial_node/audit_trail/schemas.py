"""Response schemas of the audit trail (操作日志)."""

from __future__ import annotations

import marshmallow as ma

from common.schemas import Out, Query, count_field


class AuditQuery(Query):
    action = ma.fields.String(load_default=None)
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))
    offset = count_field(query=True, load_default=0)


class AuditEventOut(Out):
    id = ma.fields.Integer()
    seq = ma.fields.Integer(metadata={"description": "position in the hash chain"})
    at = ma.fields.DateTime()
    actor_id = ma.fields.Integer(allow_none=True)
    action = ma.fields.String()
    target_type = ma.fields.String()
    target_id = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()
    hash = ma.fields.String(metadata={"description": "SHA-256 chaining this event to the one before it"})


class AuditEventsOut(Out):
    events = ma.fields.List(ma.fields.Nested(AuditEventOut))


class LoginQuery(Query):
    outcome = ma.fields.String(load_default=None, metadata={"description": "success | failed | locked | throttled"})
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))
    offset = count_field(query=True, load_default=0)


class LoginEventOut(Out):
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    username = ma.fields.String()
    account_id = ma.fields.Integer(allow_none=True)
    address = ma.fields.String()
    channel = ma.fields.String()
    outcome = ma.fields.String()


class LoginEventsOut(Out):
    events = ma.fields.List(ma.fields.Nested(LoginEventOut))
