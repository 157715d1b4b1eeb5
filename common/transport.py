"""HTTP transport between the tiers, behind a small interface (python-tuf's ``FetcherInterface`` idea).

:class:`RequestsTransport` is the default; tests plug in a transport that calls the national app's test
client, or one that misbehaves. Every failure leaves as :class:`~common.errors.TransportError` with
``details.retryable`` (network errors, timeouts and 5xx are retryable; 4xx are answers, not failures).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from common.errors import TransportError


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = ""


class Transport(Protocol):
    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Response: ...


class RequestsTransport:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # one requests.Session per thread (a sync round pushes from a pool)
        self._new_session = requests.Session

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        import requests

        try:
            session = getattr(self._local, "session", None)
            if session is None:
                session = self._local.session = self._new_session()
            r = session.request(
                method, self.base_url + path, data=body or None, headers=headers or {}, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise TransportError(f"{method} {path} failed: {e}", details={"retryable": True}) from e
        if r.status_code >= 500:
            raise TransportError(
                f"{method} {path} answered {r.status_code}",
                details={"retryable": True, "status": r.status_code, "body": r.text[:500]},
            )
        return Response(r.status_code, r.content, r.headers.get("Content-Type", ""))
