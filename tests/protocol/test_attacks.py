"""The attack and fault cases of signing_anchors.md §(b) that apply to the protocol layer, as a table.

Each case builds its input from the deterministic simulator, feeds it to the real verifier, and checks
the outcome and that nothing was accepted (the state machine is pure: the province state only changes
through the value ``accept_batch`` returns).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sync_protocol import errors as E
from sync_protocol.batch import DEFAULT_LIMITS, Limits, build_batch
from sync_protocol.canonical import canonical_bytes
from sync_protocol.dsse import BATCH_PAYLOAD_TYPE, Envelope, encode_envelope, parse_envelope, sign_envelope
from sync_protocol.log import Checkpoint, sign_checkpoint, verify_checkpoint_consistency, verify_receipt
from sync_protocol.verifier import ProvinceState, accept_batch
from tests.protocol.simulator import EPOCH, LOG_ORIGIN, SimFederation, fixed_signer, sample_record

NOW = EPOCH + dt.timedelta(days=1)


def _swap_envelope(data: bytes, env: Envelope) -> bytes:
    return encode_envelope(env) + b"\n" + data.split(b"\n", 1)[1]


def _resign(data: bytes, payload: bytes, signers, payload_type: str = BATCH_PAYLOAD_TYPE) -> bytes:
    return _swap_envelope(data, sign_envelope(payload, payload_type, signers))


def _header_obj(data: bytes) -> dict:
    return json.loads(parse_envelope(data.split(b"\n", 1)[0]).payload)


@dataclass
class Case:
    make: Callable[[SimFederation], tuple[str, bytes]]  # returns (province, batch bytes) to submit last
    error: type[E.ProtocolError] | None  # None = accepted
    before: int = 0  # batches of 44 accepted before the attack
    now: dt.datetime = NOW
    limits: Limits = DEFAULT_LIMITS
    lookup_none: bool = False  # the national store lost the stored hashes


def flip_record_byte(f):
    data = f.provinces["44"].next_batch(3).data
    i = data.index(b'"XM":"') + 7
    return "44", data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def flip_header_byte(f):
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    payload = bytearray(env.payload)
    payload[10] ^= 1
    return "44", _swap_envelope(data, Envelope(bytes(payload), env.payload_type, env.signatures))


def swapped_payload_type(f):
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    return "44", _swap_envelope(data, Envelope(env.payload, "application/json", env.signatures))


def resigned_as_other_type(f):
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    return "44", _resign(data, env.payload, [f.provinces["44"].signer], "application/vnd.tmis.trust.v1+json")


def malformed_header(mutate):
    def make(f):
        data = f.provinces["44"].next_batch(3).data
        env = parse_envelope(data.split(b"\n", 1)[0])
        return "44", _resign(data, mutate(env.payload), [f.provinces["44"].signer])

    return make


def other_province_signs(f):
    # 11's key signs a batch that claims to be 44's, submitted as 44
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    return "44", _resign(data, env.payload, [f.provinces["11"].signer])


def scope_mismatch(f):
    # 11 signs a 44 batch and submits it on its own channel
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    return "11", _resign(data, env.payload, [f.provinces["11"].signer])


def threshold_two(f):
    second = fixed_signer("province-44-second")
    doc = f.publish_trust(
        province_keys={"11": [f.provinces["11"].signer], "44": [f.provinces["44"].signer, second]}, thresholds={"44": 2}
    )
    f.rotate_trust(doc, NOW)
    return second


def duplicated_signature(f):
    threshold_two(f)
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    sig = env.signatures[0]
    return "44", _swap_envelope(data, Envelope(env.payload, env.payload_type, (sig, sig)))


def threshold_met(f):
    second = threshold_two(f)
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    return "44", _resign(data, env.payload, [f.provinces["44"].signer, second])


def unknown_extra_signature(f):
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    stranger = sign_envelope(env.payload, BATCH_PAYLOAD_TYPE, [fixed_signer("stranger")]).signatures[0]
    return "44", _swap_envelope(data, Envelope(env.payload, env.payload_type, (*env.signatures, stranger)))


def bad_known_signature(f):
    data = f.provinces["44"].next_batch(3).data
    env = parse_envelope(data.split(b"\n", 1)[0])
    keyid, sig = env.signatures[0]
    bad = (keyid, bytes([sig[0] ^ 1]) + sig[1:])
    extra = sign_envelope(env.payload, BATCH_PAYLOAD_TYPE, [fixed_signer("stranger")]).signatures[0]
    return "44", _swap_envelope(data, Envelope(env.payload, env.payload_type, (env.signatures[0], bad, extra)))


def replay(f):
    return "44", f.provinces["44"].batches[-1].data


def equivocation(f):
    p = f.provinces["44"]
    first = p.batches[0]
    other = build_batch(
        province="44",
        seq=1,
        prev_batch_hash=None,
        created_at=first.header.created_at,
        schema_version="x",
        log_origin=LOG_ORIGIN,
        records=[sample_record("44", 1, 999)],
        signer=p.signer,
    )
    return "44", other.data


def gap(f):
    p = f.provinces["44"]
    p.next_batch(1)  # seq 2 built but never sent
    return "44", p.next_batch(1).data


def reorder_then_in_order(f):
    p = f.provinces["44"]
    b1, b2 = p.next_batch(1), p.next_batch(1)
    with pytest.raises(E.SequenceGapError):
        f.submit("44", b2.data)
    f.submit("44", b1.data)
    return "44", b2.data


def fast_forward(f):
    p = f.provinces["44"]
    p.seq = 99_998
    return "44", p.next_batch(1).data


def broken_chain(f):
    p = f.provinces["44"]
    p.last_hash = "0" * 64
    return "44", p.next_batch(1).data


def version_gap(f):
    p = f.provinces["44"]
    p.version += 5
    return "44", p.next_batch(1).data


def wrong_log_origin(f):
    return "44", f.provinces["44"].next_batch(1, log_origin="other.example/log").data


def revoked_key_backdated(f):
    p = f.provinces["44"]
    new = fixed_signer("province-44-new")
    f.rotate_trust(f.publish_trust(province_keys={"11": [f.provinces["11"].signer], "44": [new]}), NOW)
    return "44", p.next_batch(1, created_at=EPOCH).data  # signed with the revoked key, claims an old time


def rotated_key_overlap(f):
    p = f.provinces["44"]
    new = fixed_signer("province-44-new")
    f.rotate_trust(f.publish_trust(province_keys={"11": [f.provinces["11"].signer], "44": [p.signer, new]}), NOW)
    p.next_batch(1)  # old key still valid during the overlap
    f.submit("44", p.batches[-1].data)
    return "44", p.next_batch(1, signer=new).data


def clock(delta):
    def make(f):
        return "44", f.provinces["44"].next_batch(1, created_at=NOW + delta).data

    return make


def path_like_province(f):
    return "../x", f.provinces["44"].next_batch(1).data


CASES: dict[str, Case] = {
    "01 tampered record byte": Case(flip_record_byte, E.MalformedError),
    "01 tampered header byte": Case(flip_header_byte, E.SignatureError),
    "02 swapped payload type": Case(swapped_payload_type, E.SignatureError),
    "02 re-signed under another payload type": Case(resigned_as_other_type, E.SignatureError),
    "03 duplicate JSON keys (signed)": Case(
        malformed_header(lambda p: p.replace(b'{"created_at"', b'{"seq":1,"created_at"')), E.MalformedError
    ),
    "03 big integer (signed)": Case(
        malformed_header(lambda p: p.replace(b'"seq":1', b'"seq":9007199254740993')), E.MalformedError
    ),
    "03 float (signed)": Case(malformed_header(lambda p: p.replace(b'"seq":1', b'"seq":1.0')), E.MalformedError),
    "03 NaN (signed)": Case(malformed_header(lambda p: p.replace(b'"seq":1', b'"seq":NaN')), E.MalformedError),
    "03 non-canonical payload (signed)": Case(
        malformed_header(lambda p: p.replace(b'{"created_at"', b'{ "created_at"')), E.MalformedError
    ),
    "04 province B signs for A": Case(other_province_signs, E.SignatureError),
    "04 province B claims A's batch on its own channel": Case(scope_mismatch, E.KeyUntrustedError),
    "05 duplicated signature to fake a threshold": Case(duplicated_signature, E.SignatureError),
    "05 threshold of two distinct keys": Case(threshold_met, None),
    "06 unknown extra signature ignored": Case(unknown_extra_signature, None),
    "07 bad signature from a known key": Case(bad_known_signature, E.SignatureError),
    "08 replay of the same bytes": Case(replay, E.AlreadyAcceptedError, before=1),
    "09 same seq, different bytes": Case(equivocation, E.EquivocationError, before=2),
    "10 gap": Case(gap, E.SequenceGapError, before=1),
    "11 reorder (2 before 1), then in order": Case(reorder_then_in_order, None),
    "12 rollback with the stored hash lost": Case(replay, E.SequenceStaleError, before=2, lookup_none=True),
    "13 fast-forward to seq 99999": Case(fast_forward, E.SequenceGapError, before=1),
    "14 prev_batch_hash mismatch": Case(broken_chain, E.ChainBrokenError, before=1),
    "14 record versions skip": Case(version_gap, E.ChainBrokenError, before=1),
    "15 wrong log origin": Case(wrong_log_origin, E.MalformedError),
    "16 revoked key, backdated created_at": Case(revoked_key_backdated, E.SignatureError, before=1),
    "16 rotation overlap: old then new key": Case(rotated_key_overlap, None, before=1),
    "18 expired trust refuses new batches": Case(
        lambda f: ("44", f.provinces["44"].next_batch(1).data), E.KeyUntrustedError, now=EPOCH + dt.timedelta(days=400)
    ),
    "27 clock skew beyond tolerance": Case(clock(dt.timedelta(minutes=6)), E.ClockSkewError),
    "28 clock skew within tolerance": Case(clock(dt.timedelta(minutes=4)), None),
    "31 oversized input refused before parsing": Case(
        lambda f: ("44", f.provinces["44"].next_batch(3).data), E.LimitExceededError, limits=Limits(max_batch_bytes=100)
    ),
    "31 too many records": Case(
        lambda f: ("44", f.provinces["44"].next_batch(3).data), E.LimitExceededError, limits=Limits(max_records=2)
    ),
    "32 path-like province code": Case(path_like_province, E.MalformedError),
}


@pytest.mark.parametrize("name", list(CASES))
def test_attack(name):
    case = CASES[name]
    f = SimFederation()
    for _ in range(case.before):
        f.submit("44", f.provinces["44"].next_batch(2).data)
    province, data = case.make(f)
    state = f.state.get(province, ProvinceState("44"))
    before = (state, len(f.log.leaves))
    lookup = (lambda s: None) if case.lookup_none else (lambda s: f.accepted.get((province, s)))
    if case.error is None:
        acc = accept_batch(
            data,
            province=province,
            trust=f.trust,
            state=state,
            stored_batch_hash=lookup,
            now=case.now,
            limits=case.limits,
        )
        assert acc.new_state.last_seq == state.last_seq + 1
        return
    with pytest.raises(case.error) as exc:
        accept_batch(
            data,
            province=province,
            trust=f.trust,
            state=state,
            stored_batch_hash=lookup,
            now=case.now,
            limits=case.limits,
        )
    assert exc.value.code.startswith("protocol_")
    assert (f.state.get(province, ProvinceState("44")), len(f.log.leaves)) == before  # nothing accepted


def test_equivocation_carries_evidence():
    f = SimFederation()
    f.submit("44", f.provinces["44"].next_batch(2).data)
    _p, data = equivocation(f)
    with pytest.raises(E.EquivocationError) as exc:
        f.submit("44", data)
    d = exc.value.details
    assert d["seq"] == 1
    assert d["accepted_batch_hash"] == f.accepted[("44", 1)]
    assert d["offered_batch_hash"] != d["accepted_batch_hash"]


def test_identical_resend_returns_the_same_receipt_and_no_new_leaf():
    f = SimFederation()
    b = f.provinces["44"].next_batch(2)
    r1 = f.submit("44", b.data)
    size = len(f.log.leaves)
    assert f.submit("44", b.data) == r1
    assert len(f.log.leaves) == size


def test_spec_5_3_a_non_canonical_envelope_line_is_refused_and_its_canonical_form_keeps_the_batch_identity():
    # signatures cover the payload bytes, not the envelope's JSON layout; but the node stores line 1 as received,
    # so it must be the canonical encoding (one rule: refused, never canonicalised behind the sender's back)
    f = SimFederation()
    b = f.provinces["44"].next_batch(2)
    env_line, rest = b.data.split(b"\n", 1)
    obj = json.loads(env_line)
    pretty = json.dumps(
        {"signatures": obj["signatures"], "payloadType": obj["payloadType"], "payload": obj["payload"]},
        separators=(", ", ": "),
    ).encode()

    def accept(data: bytes):
        return accept_batch(
            data, province="44", trust=f.trust, state=ProvinceState("44"), stored_batch_hash=lambda s: None, now=NOW
        )

    with pytest.raises(E.MalformedError, match="canonical"):
        accept(pretty + b"\n" + rest)
    canonical = encode_envelope(parse_envelope(pretty))
    assert canonical == env_line
    assert accept(canonical + b"\n" + rest).batch.batch_hash == b.batch_hash


def test_key_revoked_later_keeps_earlier_batches_valid_at_their_log_position(tmp_path):
    # case 17: batch 1 is logged under trust 1; the key is then revoked (trust 2); the audit judges batch 1
    # at its log position and accepts it, while a batch signed with that key after revocation is refused.
    from sync_protocol.audit import audit_bundle
    from sync_protocol.log import leaf_bytes

    f = SimFederation()
    p = f.provinces["44"]
    b1 = p.next_batch(2)
    f.submit("44", b1.data)
    new = fixed_signer("province-44-new")
    f.rotate_trust(f.publish_trust(province_keys={"11": [f.provinces["11"].signer], "44": [new]}), NOW)
    with pytest.raises(E.SignatureError):
        f.submit("44", p.next_batch(1).data)
    p.seq, p.version, p.last_hash = 1, b1.header.version_to, b1.batch_hash
    f.submit("44", p.next_batch(1, signer=new).data)
    root = tmp_path / "bundle"
    for i, doc in enumerate(f.trust_docs, start=1):
        (root / "trust").mkdir(parents=True, exist_ok=True)
        (root / "trust" / f"{i}.trust.json").write_bytes(doc)
    (root / "batches" / "44").mkdir(parents=True)
    (root / "batches" / "44" / "00000001.batch").write_bytes(b1.data)
    (root / "batches" / "44" / "00000002.batch").write_bytes(p.batches[-1].data)
    (root / "log").mkdir()
    (root / "log" / "leaves.jsonl").write_bytes(b"".join(leaf_bytes(x) + b"\n" for x in f.log.leaves))
    (root / "log" / "checkpoint").write_text(sign_checkpoint(f.log.checkpoint(), f.log_signer))
    report = audit_bundle(root)
    assert report.ok, [x.to_json() for x in report.findings if not x.ok]


def test_truncated_and_forked_logs_are_refused():
    f = SimFederation()
    for _ in range(3):
        f.submit("44", f.provinces["44"].next_batch(1).data)
    big, small = f.log.checkpoint(), f.log.checkpoint(2)
    with pytest.raises(E.ProofError, match="shrank"):
        verify_checkpoint_consistency(big, small, [])
    fork = Checkpoint(big.origin, big.size, bytes(32))
    with pytest.raises(E.ProofError):
        verify_checkpoint_consistency(big, fork, [])
    verify_checkpoint_consistency(small, big, f.log.consistency(2))


def test_receipt_mutations_fail():
    f = SimFederation()
    r = f.submit("44", f.provinces["44"].next_batch(2).data)
    keys = f.trust.log_keys
    verify_receipt(r.to_bytes(), origin=LOG_ORIGIN, log_keys=keys)
    rewritten = json.loads(r.to_bytes())
    rewritten["leaf"]["accepted_at"] = "2026-01-05T00:00:00Z"  # case 25: leaf rewritten
    with pytest.raises(E.ProofError):
        verify_receipt(canonical_bytes(rewritten), origin=LOG_ORIGIN, log_keys=keys)
    other = json.loads(r.to_bytes())
    other["leaf_index"] = 0
    with pytest.raises(E.ProofError):
        verify_receipt(canonical_bytes(other), origin=LOG_ORIGIN, log_keys=keys)
    bad = json.loads(r.to_bytes())
    bad["checkpoint"] = sign_checkpoint(f.log.checkpoint(), fixed_signer("impostor"))
    with pytest.raises(E.SignatureError):  # checkpoint signed by a key the trust does not know
        verify_receipt(canonical_bytes(bad), origin=LOG_ORIGIN, log_keys=keys)


def test_accept_never_mutates_the_state_it_was_given():
    # case 33: a crash between verify and persist leaves nothing half-trusted: the verifier has no side effects
    f = SimFederation()
    state = ProvinceState("44")
    acc = accept_batch(
        f.provinces["44"].next_batch(2).data,
        province="44",
        trust=f.trust,
        state=state,
        stored_batch_hash=lambda s: None,
        now=NOW,
    )
    assert state == ProvinceState("44")
    assert acc.new_state.last_seq == 1


def test_envelope_base64_must_be_canonical():
    from sync_protocol.keys import b64decode

    assert b64decode("QQ==", "x") == b"A"
    for bad in ("QR==", "QQ", "Q Q==", "QQ==\n"):  # same byte with dirty unused bits, no padding, whitespace
        with pytest.raises(E.MalformedError):
            b64decode(bad, "x")


def test_a_receipt_exposes_a_rewritten_log():
    # case 26: the province kept a receipt for leaf i; the national log later differs at i. The receipt's
    # checkpoint and the new one cannot be proven consistent: the two signed checkpoints are the evidence.
    from sync_protocol import merkle
    from sync_protocol.log import leaf_hash_of, verify_checkpoint

    f = SimFederation()
    for _ in range(3):
        f.submit("44", f.provinces["44"].next_batch(1).data)
    receipt = f.receipts[("44", 2)]
    kept = verify_checkpoint(receipt.checkpoint_note, origin=LOG_ORIGIN, keys=f.trust.log_keys)
    rewritten = list(f.log.hashes)
    rewritten[receipt.leaf_index] = leaf_hash_of({**receipt.leaf, "accepted_at": "2026-01-09T00:00:00Z"})
    forged = Checkpoint(LOG_ORIGIN, len(rewritten), merkle.root(rewritten))
    with pytest.raises(E.ProofError):
        verify_checkpoint_consistency(kept, forged, merkle.consistency_proof(kept.size, rewritten))
    with pytest.raises(E.ProofError):  # and the leaf the province holds is not in the forged tree
        merkle.verify_inclusion(
            leaf_hash_of(receipt.leaf),
            receipt.leaf_index,
            forged.size,
            merkle.inclusion_proof(receipt.leaf_index, rewritten),
            forged.root,
        )


def test_parallel_audit_reports_exactly_what_the_sequential_audit_reports(tmp_path, monkeypatch):
    """The auditor spreads large bundles over CPU cores; the findings (a tampered record included) must be the
    same as one process gives."""
    import shutil
    from pathlib import Path

    import sync_protocol.audit as A

    root = tmp_path / "bundle"
    shutil.copytree(Path(__file__).resolve().parents[1] / "vectors", root)
    victim = root / "batches" / "44" / "00000002.batch"
    victim.write_bytes(victim.read_bytes().replace("教师".encode(), "学生".encode(), 1))
    monkeypatch.setattr(A, "PARALLEL_MIN_BYTES", 10**12)
    sequential = A.audit_bundle(root).to_json()
    monkeypatch.setattr(A, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(A.os, "cpu_count", lambda: 2)
    parallel = A.audit_bundle(root).to_json()
    assert not sequential["ok"] and parallel == sequential
    assert any("00000002.batch" in f["subject"] and not f["ok"] for f in parallel["findings"])


def test_audit_series_reads_files_where_it_verifies_them_with_the_same_findings(tmp_path):
    """Batches given as paths (the bundle and `tmis audit series` do this, so a large series is never held in
    memory at once) are judged exactly as the same batches given as bytes; an unreadable file is a finding."""
    import shutil
    from pathlib import Path

    import sync_protocol.audit as A

    root = tmp_path / "bundle"
    shutil.copytree(Path(__file__).resolve().parents[1] / "vectors", root)
    files = sorted((root / "batches" / "44").glob("*.batch"))
    files[1].write_bytes(files[1].read_bytes().replace("教师".encode(), "学生".encode(), 1))
    files[2].write_bytes(b"\r\n" + files[2].read_bytes())
    chain, report = A.load_trust([p.read_bytes() for p in sorted((root / "trust").glob("*.json"))])
    assert report.ok
    by_path = A.audit_series([(p.name, p) for p in files], chain).to_json()
    by_bytes = A.audit_series([(p.name, p.read_bytes()) for p in files], chain).to_json()
    assert by_path == by_bytes and not by_path["ok"]
    bad = {f["subject"].split(" ")[0] for f in by_path["findings"] if not f["ok"]}
    assert {files[1].name, files[2].name} <= bad
    missing = A.audit_series([("gone.batch", root / "gone.batch")], chain).to_json()
    assert [f["reason"] for f in missing["findings"]] == ["cannot read: No such file or directory"]
