"""The production server (waitress, :func:`common.cli.make_wsgi_server`) refuses a body whose declared length
is above the node's limit before reading it, with the JSON error contract (docs/protocol.md §11)."""

from __future__ import annotations

import json
import socket
import threading

from flask import Flask

from common.cli import make_wsgi_server


def _serve(max_body: int):
    app = Flask(__name__)
    seen = []

    @app.post("/upload")
    def upload():
        seen.append(True)
        return "ok"

    server = make_wsgi_server(app, "127.0.0.1", 0, 1, max_body=max_body, too_large_code="protocol_limit_exceeded")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread, seen


def _raw(port: int, head: bytes) -> tuple[int, dict, bytes]:
    """Send ``head`` as it is (``Connection: close``) and read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(head)
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    head_part, body = data.split(b"\r\n\r\n", 1)
    status = int(head_part.split(b" ")[1])
    headers = dict(line.decode().split(": ", 1) for line in head_part.split(b"\r\n")[1:] if b": " in line)
    return status, headers, body


def test_spec_11_the_server_refuses_a_declared_length_over_the_limit_before_reading_the_body():
    server, thread, seen = _serve(max_body=1000)
    port = server.socket.getsockname()[1]
    try:
        status, headers, body = _raw(
            port, b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000000000\r\n\r\n"
        )
        assert status == 413
        assert headers["Content-Type"] == "application/json"
        answer = json.loads(body)
        assert answer["code"] == "protocol_limit_exceeded" and answer["details"] == {"limit": 1000}
        assert not seen  # the application never saw the request
        ok, _h, body = _raw(
            port, b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
        )
        assert (ok, body) == (200, b"ok")
    finally:
        server.close()
        thread.join(timeout=10)
