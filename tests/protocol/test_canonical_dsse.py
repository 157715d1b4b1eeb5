"""Canonical JSON and DSSE, including interoperability with an independent DSSE implementation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from sync_protocol import errors as E
from sync_protocol.canonical import canonical_bytes, parse_canonical, parse_json
from sync_protocol.dsse import encode_envelope, parse_envelope, sign_envelope, verify_envelope
from tests.protocol.simulator import fixed_signer

PTYPE = "application/vnd.tmis.batch-header.v1+json"


def test_rfc8785_output():
    # key order by UTF-16 code units: U+1F600 (surrogates D83D…) sorts before U+FB33
    assert (
        canonical_bytes({"\ufb33": 1, "\U0001f600": 2, "a": [True, None, "é"]})
        == '{"a":[true,null,"é"],"\U0001f600":2,"\ufb33":1}'.encode()
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a":1,"a":2}', "duplicate"),
        (b'{"a":1.5}', "float"),
        (b'{"a":1e3}', "float"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b'{"a":9007199254740992}', r"2\^53"),
        (b'{"a":-9007199254740992}', r"2\^53"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a":', "not JSON"),
        (b"[" * 40 + b"]" * 40, "deeper"),
    ],
)
def test_strict_parser_refuses(raw, fragment):
    with pytest.raises(E.MalformedError, match=fragment):
        parse_json(raw)


def test_canonical_parse_refuses_other_byte_forms():
    assert parse_canonical(b'{"a":1,"b":2}') == {"a": 1, "b": 2}
    for raw in (b'{"b":2,"a":1}', b'{"a": 1,"b":2}', b'{"a":1,"b":2}\n', b'{"a":"\\u0041"}'):
        with pytest.raises(E.MalformedError, match="canonical"):
            parse_canonical(raw)


def test_floats_and_big_ints_are_refused_when_producing():
    with pytest.raises(E.MalformedError):
        canonical_bytes({"amount": 1.5})
    with pytest.raises(E.MalformedError):
        canonical_bytes({"n": 2**53})


def _sslib_key(signer) -> SSlibKey:
    return SSlibKey.from_crypto(signer._private.public_key(), keyid=signer.keyid)


def test_our_envelope_verifies_with_securesystemslib_and_fails_there_after_tampering():
    signer = fixed_signer("interop")
    payload = canonical_bytes({"hello": "世界", "n": 1})
    data = encode_envelope(sign_envelope(payload, PTYPE, [signer]))
    import json

    their = SslibEnvelope.from_dict(json.loads(data))
    assert set(their.verify([_sslib_key(signer)], 1)) == {signer.keyid}
    assert their.payload == payload and their.payload_type == PTYPE
    # tampering: payload, type, signature
    for mutate in ("payload", "payloadType", "sig"):
        obj = json.loads(data)
        if mutate == "payload":
            obj["payload"] = obj["payload"][:-4] + ("AAAA" if obj["payload"][-4:] != "AAAA" else "BBBB")
        elif mutate == "payloadType":
            obj["payloadType"] = "application/json"
        else:
            sig = obj["signatures"][0]["sig"]
            obj["signatures"][0]["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
        with pytest.raises(VerificationError):
            SslibEnvelope.from_dict(obj).verify([_sslib_key(signer)], 1)


def test_an_envelope_signed_by_securesystemslib_verifies_here():
    import json

    from securesystemslib.signer import CryptoSigner

    signer = fixed_signer("interop-2")
    theirs = SslibEnvelope(canonical_bytes({"x": 1}), PTYPE, {})
    theirs.sign(CryptoSigner(signer._private, _sslib_key(signer)))
    env = parse_envelope(json.dumps(theirs.to_dict()).encode())
    assert verify_envelope(env, PTYPE, {signer.keyid: signer.public}, 1) == {signer.keyid}


def test_threshold_counts_unique_trusted_keys():
    a, b = fixed_signer("a"), fixed_signer("b")
    env = sign_envelope(b"{}", PTYPE, [a, a])
    keys = {a.keyid: a.public, b.keyid: b.public}
    with pytest.raises(E.SignatureError, match="1 valid"):
        verify_envelope(env, PTYPE, keys, 2)
    assert verify_envelope(sign_envelope(b"{}", PTYPE, [a, b]), PTYPE, keys, 2) == {a.keyid, b.keyid}
    with pytest.raises(E.LimitExceededError):
        parse_envelope(encode_envelope(sign_envelope(b"{}", PTYPE, [a] * 17)))


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(codec="utf-8"), max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=600)
@given(_json)
def test_canonical_fast_path_equals_rfc8785(value):
    import rfc8785

    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert parse_canonical(rfc8785.dumps(value)) == value


def test_control_characters_and_non_bmp_keys():
    import rfc8785

    for value in ({"a": '\x00\x1f\x7f\u2028\b\f\n\r\t"\\'}, {"\U0001f600": 1, "\ufb33": 2, "z": 3}, ["é", {"é": "ü"}]):
        assert canonical_bytes(value) == rfc8785.dumps(value)
