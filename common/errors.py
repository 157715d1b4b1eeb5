"""The tmis error family and the JSON error contract shared by both nodes.

Rules of this module:

* Every error raised on purpose by tmis code is a :class:`TmisError`. Each layer has its own subclass
  (configuration, catalogue/validation, storage, transport, auth, ...) and wraps what it calls with
  ``raise XError(...) from e`` so that no ``sqlalchemy.exc`` or ``requests`` exception leaks upward.
* Every error carries a stable machine code (``code``), an HTTP status, a human message and structured
  ``details``. The HTTP body is always ``{"code", "error", "message", "details"}``:

  ``code``     stable snake_case identifier from :class:`ErrorCode`; scripts act on it;
  ``error``    the HTTP reason phrase of the status (``"Unprocessable Entity"``);
  ``message``  one human sentence (English, with the Chinese term where a user would search for it);
  ``details``  a JSON object; for validation errors ``{"errors": [{group, field, label, reason_zh,
               reason_en, value}]}`` — each entry a :class:`FieldError`, written by ``FieldError.to_json``.

The table of codes is ``docs/errors.md``; a test keeps the two in step.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any


class ErrorCode(enum.StrEnum):
    """Stable error codes. Never renumber or reuse one; add new ones at the end of their section."""

    # generic request errors
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INTERNAL = "internal_error"
    # configuration and startup
    CONFIG_INVALID = "config_invalid"
    # authentication and authorisation
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    ACCOUNT_LOCKED = "account_locked"
    # storage
    STORAGE_UNAVAILABLE = "storage_unavailable"
    STORAGE_CONFLICT = "storage_conflict"
    # catalogue / domain data
    CATALOGUE_INVALID = "catalogue_invalid"
    IDENTITY_INVALID = "identity_invalid"
    # transport between nodes
    TRANSPORT_FAILED = "transport_failed"
    # sync protocol (raised by sync_protocol, mapped by the nodes)
    PROTOCOL_MALFORMED = "protocol_malformed"
    PROTOCOL_SIGNATURE_INVALID = "protocol_signature_invalid"
    PROTOCOL_KEY_UNTRUSTED = "protocol_key_untrusted"
    PROTOCOL_SEQUENCE_GAP = "protocol_sequence_gap"
    PROTOCOL_SEQUENCE_STALE = "protocol_sequence_stale"
    PROTOCOL_CHAIN_BROKEN = "protocol_chain_broken"
    PROTOCOL_EQUIVOCATION = "protocol_equivocation"
    PROTOCOL_LIMIT_EXCEEDED = "protocol_limit_exceeded"
    PROTOCOL_TRUST_INVALID = "protocol_trust_invalid"
    PROTOCOL_PROOF_INVALID = "protocol_proof_invalid"
    PROTOCOL_CLOCK_SKEW = "protocol_clock_skew"
    PROTOCOL_ALREADY_ACCEPTED = "protocol_already_accepted"
    PROTOCOL_TRANSFER_STATE = "protocol_transfer_state"
    PROTOCOL_TRANSFER_OWNER = "protocol_transfer_owner"
    PROTOCOL_SEAL_INVALID = "protocol_seal_invalid"
    # storage (continued)
    STORAGE_BUSY = "storage_busy"
    # authentication (continued)
    LOGIN_THROTTLED = "login_throttled"
    # data protection
    PROTECTED_DATA_INVALID = "protected_data_invalid"
    # reconciliation and recovery (reported by a sync round, never an HTTP answer)
    RECONCILIATION_MISMATCH = "reconciliation_mismatch"
    RESTORED_FROM_BACKUP = "restored_from_backup"


class TmisError(Exception):
    """Base of every deliberate tmis error."""

    code: ErrorCode = ErrorCode.INTERNAL
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
        http_status: int | None = None,
        field_errors: Iterable[FieldError] = (),
        message_zh: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh  # the sentence the pages show (the JSON body keeps ``message``)
        self.details: dict[str, Any] = dict(details or {})
        self.field_errors: tuple[FieldError, ...] = tuple(field_errors)
        if self.field_errors:
            self.details["errors"] = [e.to_json() for e in self.field_errors]
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status

    def to_body(self) -> dict[str, Any]:
        """The JSON error body of the contract."""
        return error_body(self.code, self.http_status, self.message, self.details)


def error_body(code: str, status: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"code": str(code), "error": phrase, "message": message, "details": details or {}}


class ConfigError(TmisError):
    """A configuration value is missing or malformed; ``details.variable`` names it."""

    code = ErrorCode.CONFIG_INVALID
    http_status = 500


class BadRequestError(TmisError):
    code = ErrorCode.BAD_REQUEST
    http_status = 400


@dataclass(frozen=True)
class FieldError:
    """One failing field, the single shape every layer uses: the catalogue validator, the services, the JSON
    API (``details.errors``) and the forms, which show ``reason_zh`` next to the field.

    ``index`` is the record of a multi-record group; ``row`` and ``column`` locate a cell of an import file.
    """

    group: str
    field: str
    reason_zh: str
    reason_en: str
    value: Any = None
    label: str | None = None
    group_label: str | None = None
    index: int | None = None
    row: int | None = None
    column: str | None = None

    def at(self, **where: Any) -> FieldError:
        """The same error placed elsewhere (``index=``, ``row=``, ``column=``)."""
        return replace(self, **where)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.group,
            "field": self.field,
            "label": self.label if self.label is not None else self.field,
            "reason_zh": self.reason_zh,
            "reason_en": self.reason_en,
            "value": self.value,
        }
        for key in ("group_label", "index", "row", "column"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class ValidationError(TmisError):
    """Input failed validation. ``field_errors`` lists every failing field, never just the first; the JSON
    body carries them as ``details.errors``."""

    code = ErrorCode.VALIDATION_FAILED
    http_status = 422

    def __init__(self, message: str, errors: Iterable[FieldError] = (), **kw: Any) -> None:
        errors = tuple(errors)
        if not errors:
            raise TypeError("a ValidationError names at least one field (common.errors.FieldError)")
        super().__init__(message, field_errors=errors, **kw)

    @property
    def errors(self) -> tuple[FieldError, ...]:
        return self.field_errors


def invalid(group: str, field: str, reason_zh: str, reason_en: str, value: Any = None) -> ValidationError:
    """A ValidationError about one field."""
    return ValidationError(f"{group}.{field}: {reason_en}", [FieldError(group, field, reason_zh, reason_en, value)])


class NotFoundError(TmisError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class ConflictError(TmisError):
    code = ErrorCode.CONFLICT
    http_status = 409


class AuthError(TmisError):
    code = ErrorCode.UNAUTHENTICATED
    http_status = 401


class PermissionDeniedError(TmisError):
    code = ErrorCode.FORBIDDEN
    http_status = 403


class StorageError(TmisError):
    """The database failed or is unreachable; the original exception is chained."""

    code = ErrorCode.STORAGE_UNAVAILABLE
    http_status = 503


class StorageConflictError(StorageError):
    """A uniqueness or integrity constraint refused the write."""

    code = ErrorCode.STORAGE_CONFLICT
    http_status = 409


class StorageBusyError(StorageError):
    """Another transaction held the lock longer than this one would wait (SQLite's write lock, a PostgreSQL
    lock timeout, deadlock or serialization failure). Nothing was written; the same request may simply be sent
    again: ``details.retry_after`` (and the HTTP ``Retry-After`` header) says after how many seconds."""

    code = ErrorCode.STORAGE_BUSY
    http_status = 503

    def __init__(
        self, message: str = "the database is busy; try again shortly", *, retry_after: int = 2, **kw: Any
    ) -> None:
        details = {"retry_after": retry_after, **(kw.pop("details", None) or {})}
        super().__init__(message, details=details, **kw)
        self.retry_after = retry_after


class CatalogueError(TmisError):
    """The indicator catalogue or a code table data file is inconsistent (a deployment defect)."""

    code = ErrorCode.CATALOGUE_INVALID
    http_status = 500


class TransportError(TmisError):
    """A call to another node failed (network, timeout, 5xx)."""

    code = ErrorCode.TRANSPORT_FAILED
    http_status = 502


class SyncError(TmisError):
    """The national node answered a province's call with an error (its code and details are kept)."""

    http_status = 502
