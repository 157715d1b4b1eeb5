"""Signed requests: how a provincial node authenticates every call to the national node.

Headers: ``X-Tmis-Province`` (code), ``X-Tmis-Key`` (key id), ``X-Tmis-Timestamp`` (RFC 3339 UTC),
``X-Tmis-Nonce`` (16–64 characters ``[A-Za-z0-9_-]``), ``X-Tmis-Signature`` (base64 Ed25519) over::

    tmis-request/v1\\n<METHOD>\\n<path with query>\\n<province>\\n<timestamp>\\n<nonce>\\n<hex SHA-256 of the body>

The key must be one of the province's keys in the trust version in force; the timestamp must be within
the allowed skew of the receiver's clock; the nonce must not have been seen in that window (the caller
keeps the nonces: this module is pure). A replayed request is refused even within the window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping

from sync_protocol.canonical import format_time, parse_time
from sync_protocol.errors import ClockSkewError, KeyUntrustedError, MalformedError, SignatureError
from sync_protocol.identifiers import check_province
from sync_protocol.keys import Signer, b64decode, b64encode
from sync_protocol.trust import TrustMetadata

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
SKEW = dt.timedelta(minutes=5)


def _message(method: str, path: str, province: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join(
        ["tmis-request/v1", method.upper(), path, province, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    ).encode()


def sign_request(
    signer: Signer,
    province: str,
    method: str,
    path: str,
    body: bytes,
    now: dt.datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of a signed request (``nonce`` fixed only for golden vectors: a nonce is used once)."""
    timestamp = format_time(now or dt.datetime.now(dt.UTC))
    nonce = nonce or secrets.token_urlsafe(24)
    sig = signer.sign(_message(method, path, province, timestamp, nonce, body))
    return {
        "X-Tmis-Province": province,
        "X-Tmis-Key": signer.keyid,
        "X-Tmis-Timestamp": timestamp,
        "X-Tmis-Nonce": nonce,
        "X-Tmis-Signature": b64encode(sig),
    }


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    trust: TrustMetadata,
    now: dt.datetime,
    skew: dt.timedelta = SKEW,
) -> tuple[str, str]:
    """Return (province, nonce) of a correctly signed request. The caller must refuse a seen nonce."""
    try:
        province = check_province(headers["X-Tmis-Province"])
        keyid, timestamp = headers["X-Tmis-Key"], headers["X-Tmis-Timestamp"]
        nonce, signature = headers["X-Tmis-Nonce"], headers["X-Tmis-Signature"]
    except KeyError as e:
        raise SignatureError(f"missing request header {e.args[0]}") from None
    if not _NONCE.match(nonce):
        raise MalformedError("X-Tmis-Nonce must be 16–64 characters of [A-Za-z0-9_-]")
    when = parse_time(timestamp, "X-Tmis-Timestamp")
    if abs(when - now) > skew:
        raise ClockSkewError("request timestamp outside the allowed clock skew", timestamp=timestamp)
    key = trust.province_keys(province).keys.get(keyid)
    if key is None:
        raise KeyUntrustedError(
            f"key {keyid[:16]}… is not a key of province {province} in trust version {trust.version}", province=province
        )
    if not key.verify(
        b64decode(signature, "X-Tmis-Signature"), _message(method, path, province, timestamp, nonce, body)
    ):
        raise SignatureError("request signature does not verify", province=province)
    return province, nonce


def signed_message(method: str, path: str, province: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes a signed request's signature covers (docs/protocol.md §14.2)."""
    return _message(method, path, province, timestamp, nonce, body)
