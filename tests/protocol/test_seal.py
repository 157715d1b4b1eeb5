"""Sealed identities (sync_protocol.seal): seal and open, the wrapped province seal key, the national seal key
document — and every way a sealed value can be wrong gives a SealError naming the field, never the value."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync_protocol import errors as E
from sync_protocol import seal as S
from sync_protocol.identifiers import make_teacher_number
from sync_protocol.keys import Signer

T1, T2 = make_teacher_number("44", 7), make_teacher_number("44", 8)
NUMBER = "440106198803151234"
KEY = S.new_seal_key()
KEYS = {"44-s1": KEY}


def sealed(value=NUMBER, tn=T1, field="JBXX.SFZJH", key=KEY, kid="44-s1"):
    return S.seal(key, kid, value, teacher_number=tn, field=field)


def test_seal_and_open():
    s = sealed()
    assert s.startswith("seal1:44-s1:") and NUMBER not in s and S.is_sealed(s) and not S.is_sealed(NUMBER)
    assert S.open_sealed(KEYS, s, teacher_number=T1, field="JBXX.SFZJH") == NUMBER
    assert sealed() != s  # randomised: equal numbers give different sealed strings
    assert S.sealed_kid(s) == "44-s1"


@pytest.mark.parametrize(
    "case",
    ["tampered", "wrong_key", "other_teacher", "other_field", "unknown_kid", "not_sealed", "bad_base64", "short"],
)
def test_a_bad_sealed_value_is_a_clear_error(case):
    s = sealed()
    kid, body = s.split(":")[1:]
    value, keys, tn, field = s, KEYS, T1, "JBXX.SFZJH"
    if case == "tampered":
        value = f"seal1:{kid}:{body[:-6]}{'A' if body[-6] != 'A' else 'B'}{body[-5:]}"
    elif case == "wrong_key":
        keys = {"44-s1": S.new_seal_key()}
    elif case == "other_teacher":
        tn = T2
    elif case == "other_field":
        field = "identity.doc_number"
    elif case == "unknown_kid":
        keys = {"44-s2": KEY}
    elif case == "not_sealed":
        value = NUMBER
    elif case == "bad_base64":
        value = f"seal1:{kid}:***"
    elif case == "short":
        value = "seal1:44-s1:AAAA"
    with pytest.raises(S.SealError) as e:
        S.open_sealed(keys, value, teacher_number=tn, field=field)
    assert e.value.code == "protocol_seal_invalid" and e.value.http_status == 422
    assert field in str(e.value) and NUMBER not in str(e.value) and NUMBER not in repr(e.value.details)


def test_kid_format():
    with pytest.raises(E.MalformedError):
        S.seal(KEY, "bad kid", NUMBER, teacher_number=T1, field="JBXX.SFZJH")
    with pytest.raises(S.SealError):
        S.sealed_kid("seal1:bad kid:AAAA", "JBXX.SFZJH")


def test_wrap_and_unwrap_the_province_seal_key():
    national = X25519PrivateKey.generate()
    wrapped = S.wrap_seal_key(KEY, province="44", kid="44-s1", recipient=national.public_key(), recipient_kid="n1")
    assert set(wrapped) == {"province", "kid", "recipient", "enc", "wrapped"}
    assert S.unwrap_seal_key(wrapped, national) == KEY
    with pytest.raises(S.SealError):
        S.unwrap_seal_key(wrapped, X25519PrivateKey.generate())  # another recipient
    with pytest.raises(S.SealError):
        S.unwrap_seal_key({**wrapped, "kid": "44-s2"}, national)  # the kid is bound
    with pytest.raises(S.SealError):
        S.unwrap_seal_key({**wrapped, "province": "11"}, national)  # and the province
    with pytest.raises(E.MalformedError):
        S.unwrap_seal_key({**wrapped, "wrapped": "AAAA"}, national)
    with pytest.raises(E.MalformedError):
        S.check_wrapped({**wrapped, "extra": 1})


def test_the_national_seal_key_document():
    signer, other = Signer.generate(), Signer.generate()
    national = X25519PrivateKey.generate()
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    doc = S.build_seal_key_document("n1", national.public_key(), at, signer)
    got = S.verify_seal_key_document(doc, {signer.keyid: signer.public})
    assert got.kid == "n1" and got.issued_at == at
    assert S.public_bytes(got.public) == S.public_bytes(national.public_key())
    with pytest.raises(E.SignatureError):
        S.verify_seal_key_document(doc, {other.keyid: other.public})
