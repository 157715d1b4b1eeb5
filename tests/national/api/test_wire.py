"""The national node's wire behaviour matches docs/protocol.md, one test per spec point, named by section:
§14 request authentication (raw path signing, unmatched routes, one code per failure), §8 inbox paging and
acknowledgement (integers only), §11 limits (a declared length above the limit refused before the body is
read, one code per limit)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.db import make_session_factory, session_scope
from common.http import runtime_of
from national_node.provinces import provinces
from national_node.registry import registry
from sync_protocol.request_auth import sign_request
from tests.integration.federation import make_national
from tests.protocol.simulator import fixed_signer


@pytest.fixture
def wire(tmp_path, database_url_factory):
    app, _env = make_national(tmp_path, database_url_factory("wire"))
    rt = runtime_of(app)
    signer = fixed_signer("wire province 44")
    with session_scope(make_session_factory(rt.engine)) as s:
        token = provinces.issue_token(s, "44")
        registry.enrol(s, rt.keys(), rt.origin, "44", token, base64.b64encode(signer.public.raw).decode())
    client = app.test_client()

    def call(method: str, path: str, body: bytes = b"", signed_path: str | None = None, **headers: str):
        h = sign_request(signer, "44", method, signed_path or path, body)
        h["Content-Type"] = "application/json"
        h.update(headers)
        return client.open(path, method=method, data=body, headers=h)

    yield app, client, call, signer
    rt.engine.dispose()


def test_spec_14_1_a_signed_request_to_an_unmatched_province_path_answers_404(wire):
    _app, _client, call, _signer = wire
    for path in ("/api/v1/provinces/44/nothing", "/api/v1/provinces/44/inbox/ack/extra", "/api/v1/provinces/"):
        r = call("GET", path)
        assert r.status_code == 404, (path, r.data)
        assert r.json["code"] == "not_found"
    r = call("DELETE", "/api/v1/provinces/44/inbox")
    assert (r.status_code, r.json["code"]) == (405, "method_not_allowed")


def test_spec_14_2_the_signed_path_is_the_raw_request_target(wire):
    _app, _client, call, _signer = wire
    raw = "/api/v1/provinces/44/inbox?after=0&note=%41b"
    assert call("GET", raw).status_code == 200
    decoded = call("GET", raw, signed_path="/api/v1/provinces/44/inbox?after=0&note=Ab")
    assert (decoded.status_code, decoded.json["code"]) == (401, "protocol_signature_invalid")


@pytest.mark.parametrize(
    ("case", "change", "status", "code"),
    [
        ("missing header", {"X-Tmis-Nonce": None}, 401, "protocol_signature_invalid"),
        (
            "bad signature",
            {"X-Tmis-Signature": base64.b64encode(b"x" * 64).decode()},
            401,
            "protocol_signature_invalid",
        ),
        ("malformed nonce", {"X-Tmis-Nonce": "short"}, 400, "protocol_malformed"),
        ("stale timestamp", {"X-Tmis-Timestamp": "2020-01-01T00:00:00Z"}, 422, "protocol_clock_skew"),
        ("malformed timestamp", {"X-Tmis-Timestamp": "yesterday"}, 400, "protocol_malformed"),
        ("unknown key", {"X-Tmis-Key": "0" * 64}, 403, "protocol_key_untrusted"),
        ("unknown province", {"X-Tmis-Province": "99"}, 400, "protocol_malformed"),
        ("another province", {"X-Tmis-Province": "11"}, 403, "protocol_key_untrusted"),
    ],
)
def test_spec_14_3_each_authentication_failure_has_one_code(wire, case, change, status, code):
    _app, client, _call, signer = wire
    path = "/api/v1/provinces/44/inbox?after=0"
    headers = sign_request(signer, "44", "GET", path, b"")
    for k, v in change.items():
        if v is None:
            headers.pop(k)
        else:
            headers[k] = v
    r = client.get(path, headers=headers)
    assert (r.status_code, r.json["code"]) == (status, code), (case, r.json)


def test_spec_14_3_a_replayed_nonce_is_refused(wire):
    _app, client, _call, signer = wire
    path = "/api/v1/provinces/44/inbox?after=0"
    headers = sign_request(signer, "44", "GET", path, b"")
    assert client.get(path, headers=headers).status_code == 200
    again = client.get(path, headers=headers)
    assert (again.status_code, again.json["code"]) == (401, "protocol_signature_invalid")


@pytest.mark.parametrize("seq", [1.5, 1.0, "1", True, None, -1, 2**60])
def test_spec_8_2_an_ack_takes_integers_only(wire, seq):
    _app, _client, call, _signer = wire
    r = call("POST", "/api/v1/provinces/44/inbox/ack", json.dumps({"seq": seq}).encode())
    assert r.status_code in (400, 422), (seq, r.json)
    assert r.json["code"] in ("bad_request", "validation_failed")
    ok = call("POST", "/api/v1/provinces/44/inbox/ack", b'{"seq": 1}')
    assert (ok.status_code, ok.json) == (200, {"acked": 1})


@pytest.mark.parametrize("query", ["after=x", "after=1.5", "limit=abc", "limit=0", "limit=501", "after=-1"])
def test_spec_8_2_inbox_paging_parameters_are_checked(wire, query):
    _app, _client, call, _signer = wire
    r = call("GET", f"/api/v1/provinces/44/inbox?{query}")
    assert r.status_code in (400, 422), (query, r.json)
    assert r.json["code"] in ("bad_request", "validation_failed")


def test_spec_8_2_inbox_pages_by_after_and_limit(wire):
    _app, _client, call, _signer = wire
    first = call("GET", "/api/v1/provinces/44/inbox?after=0&limit=1").json["messages"]
    assert len(first) == 1  # the trust_update of the enrolment


class _Unreadable(io.RawIOBase):
    """A request body that must never be read."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def readinto(self, b):  # pragma: no cover - reaching it is the failure
        raise AssertionError("the body was read")


@pytest.mark.parametrize(
    ("path", "limit_of"),
    [
        ("/api/v1/provinces/44/batches", lambda rt: rt.config.max_batch_bytes),
        ("/api/v1/provinces/44/transfers", lambda rt: 1024 * 1024 + 4096),
        ("/api/v1/provinces/44/inbox/ack", lambda rt: 64 * 1024),
    ],
)
def test_spec_11_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(wire, path, limit_of):
    app, client, _call, signer = wire
    limit = limit_of(runtime_of(app))
    headers = sign_request(signer, "44", "POST", path, b"")
    environ = EnvironBuilder(path=path, method="POST", input_stream=_Unreadable(), headers=headers).get_environ()
    environ["CONTENT_LENGTH"] = str(limit + 1)
    r = client.open(Request(environ))  # a request object: the test client keeps its environ as it is
    assert r.status_code == 413, r.json
    assert r.json["code"] == "protocol_limit_exceeded"  # one code for every body limit of the national node
    assert r.json["details"]["limit"] == str(limit)


def test_spec_11_a_body_over_the_node_limit_gets_the_same_code(wire):
    app, client, _call, signer = wire
    limit = runtime_of(app).config.max_batch_bytes
    r = client.post("/api/v1/enrol", data=b"x" * (limit + 1), headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json["code"]) == (413, "protocol_limit_exceeded")


def test_spec_14_1_enrolment_answers_and_failures(wire):
    _app, client, _call, _signer = wire
    new = fixed_signer("wire province 44 second key")
    body = {"province": "44", "token": "not-a-token", "public_key": base64.b64encode(new.public.raw).decode()}
    r = client.post("/api/v1/enrol", json=body)
    assert (r.status_code, r.json["code"]) == (401, "unauthenticated")
    r = client.post("/api/v1/enrol", json={**body, "extra": 1})
    assert (r.status_code, r.json["code"]) == (422, "validation_failed")
    r = client.post("/api/v1/enrol", data=b"x" * (64 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json["code"]) == (413, "protocol_limit_exceeded")


def test_spec_14_1_trust_fetch_and_checkpoint_are_public(wire):
    _app, client, _call, _signer = wire
    trust = client.get("/api/v1/trust")
    assert trust.status_code == 200 and len(trust.json["trust"]) == 2  # init + the enrolment
    assert client.get("/api/v1/checkpoint").content_type.startswith("text/plain")


def test_spec_17_state_and_accepted_pages(wire):
    _app, _client, call, _signer = wire
    state = call("GET", "/api/v1/provinces/44/state").json
    assert state["province"] == "44" and state["last_seq"] == 0 and state["inbox_seq"] == 1
    assert call("GET", "/api/v1/provinces/44/accepted?after=0").json == {"batches": []}
    for query in ("after=-1", "after=0&limit=0", "after=0&limit=33", "after=1.5"):
        r = call("GET", f"/api/v1/provinces/44/accepted?{query}")
        assert (r.status_code, r.json["code"]) == (400, "protocol_malformed"), query


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/provinces/44/digest", b'{"root": "00", "leaves": 0}'),
        ("/api/v1/provinces/44/digest", b'{"root": "' + b"0" * 64 + b'", "leaves": 1.5}'),
        ("/api/v1/provinces/44/digest/node", b'{"node": 256}'),
        ("/api/v1/provinces/44/digest/node", b'{"node": 1, "node": 2}'),
        (
            "/api/v1/provinces/44/digest/bucket",
            b'{"bucket": 0, "leaves": [["4400000000018", 1, "' + b"0" * 64 + b'"]]}',
        ),
    ],
)
def test_spec_16_digest_requests_refuse_malformed_bodies(wire, path, body):
    _app, _client, call, _signer = wire
    r = call("POST", path, body)
    assert (r.status_code, r.json["code"]) == (400, "protocol_malformed"), r.json
