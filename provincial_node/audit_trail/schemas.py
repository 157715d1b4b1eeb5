"""Query and response schemas of the audit trail (操作日志) and the login log (登录日志).

The query schemas check types (a bad time or id is a 422 naming the field); what a value means — a known action,
a teacher number, a unit of the caller's subtree, ``until`` after ``since`` — is checked by
:mod:`provincial_node.audit_trail.search`, which also answers 422 naming the field (in Chinese and English).
An empty parameter (``?action=``) is no filter. Times without an offset are UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma

from common.schemas import Out, Query, id_field


def _time(description: str) -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(default_timezone=dt.UTC, load_default=None, metadata={"description": description})


class _LogQuery(Query):
    since = _time("ISO 8601 time; entries at or after it (UTC when no offset is given)")
    until = _time("ISO 8601 time; entries before it")
    username = ma.fields.String(load_default=None)
    unit_id = id_field(query=True, load_default=None, metadata={"description": "a unit of the caller's subtree"})
    before = id_field(
        query=True, load_default=None, metadata={"description": "keyset paging: entries older than this id"}
    )
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))

    @ma.pre_load
    def _drop_empty(self, data: Any, **_kw: Any) -> Any:
        return {k: v for k, v in data.items() if v != ""}


class AuditQuery(_LogQuery):
    action = ma.fields.String(load_default=None, metadata={"description": "an action, e.g. file.read"})
    teacher_number = ma.fields.String(
        load_default=None, metadata={"description": "events about this teacher's file (and requests naming it)"}
    )


class AuditEventOut(Out):
    id = ma.fields.Integer()
    seq = ma.fields.Integer(metadata={"description": "position in the hash chain"})
    at = ma.fields.DateTime()
    actor_id = ma.fields.Integer(allow_none=True)
    actor_username = ma.fields.String(allow_none=True, metadata={"description": "null: the node itself"})
    action = ma.fields.String()
    action_label = ma.fields.String(metadata={"description": "the action's Chinese name"})
    target_type = ma.fields.String()
    target_id = ma.fields.String()
    unit_path = ma.fields.String(metadata={"description": "the unit concerned"})
    reason = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()
    flagged = ma.fields.Boolean(metadata={"description": "a file read that a read-volume alert concerns"})
    hash = ma.fields.String(metadata={"description": "SHA-256 chaining this event to the one before it"})


class AuditEventsOut(Out):
    events = ma.fields.List(ma.fields.Nested(AuditEventOut))
    next_before = ma.fields.Integer(allow_none=True, metadata={"description": "``before`` of the next (older) page"})


class LoginQuery(_LogQuery):
    outcome = ma.fields.String(
        load_default=None,
        metadata={"description": "success | failed | locked | throttled | failure (every failed kind)"},
    )
    channel = ma.fields.String(load_default=None, metadata={"description": "web | api | cli"})
    address = ma.fields.String(load_default=None)
    own = ma.fields.Boolean(
        load_default=False, metadata={"description": "only the caller's own account (what every account may read)"}
    )


class LoginEventOut(Out):
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    username = ma.fields.String(metadata={"description": "as typed; an ID number masked"})
    account_id = ma.fields.Integer(allow_none=True)
    address = ma.fields.String()
    channel = ma.fields.String()
    outcome = ma.fields.String()
    outcome_label = ma.fields.String()


class LoginEventsOut(Out):
    events = ma.fields.List(ma.fields.Nested(LoginEventOut))
    next_before = ma.fields.Integer(allow_none=True, metadata={"description": "``before`` of the next (older) page"})
