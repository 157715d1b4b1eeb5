"""Every ``tmis audit`` command judges each batch's key at its log position, from the bundle's trust history
(docs/protocol.md §4 rule 5, §9): a series with two rotations and a revocation verifies with no
``--trust-version``; loose files take their positions from their receipts; a batch signed by a revoked key
after its revocation fails."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from click.testing import CliRunner

from sync_protocol.audit import build_record_proof
from sync_protocol.cli import audit
from sync_protocol.log import leaf_bytes, sign_checkpoint
from tests.protocol.simulator import EPOCH, SimFederation, fixed_signer


def _day(n: int, hour: int = 0) -> dt.datetime:
    return EPOCH + dt.timedelta(days=n, hours=hour)


@pytest.fixture
def rotated(tmp_path):
    """Province 44: batch 1 with key A; trust 2 adds B, batch 2 with B; trust 3 revokes A, batch 3 with B;
    trust 4 adds C, trust 5 revokes B, batch 4 with C. Province 11 pushes one batch in between."""
    f = SimFederation()
    p, p11 = f.provinces["44"], f.provinces["11"]
    a, b, c = p.signer, fixed_signer("province-44-B"), fixed_signer("province-44-C")
    k11 = [p11.signer]

    def rotate(keys, day):
        f.rotate_trust(f.publish_trust(province_keys={"11": k11, "44": keys}), _day(day))

    batches = []

    def push(day, signer, province="44"):
        src = f.provinces[province]
        built = src.next_batch(2, signer=signer)
        f.submit(province, built.data, now=_day(day, 1))
        if province == "44":
            batches.append(built)
        return built

    push(1, a)
    rotate([a, b], 2)
    push(2, b)
    push(2, None, "11")
    rotate([b], 3)
    push(3, b)
    rotate([b, c], 4)
    rotate([c], 5)
    push(5, c)
    root = tmp_path / "bundle"
    for d in ("trust", "batches/44", "batches/11", "receipts/44", "receipts/11", "log"):
        (root / d).mkdir(parents=True)
    for i, doc in enumerate(f.trust_docs, start=1):
        (root / "trust" / f"{i}.trust.json").write_bytes(doc)
    for (province, seq), receipt in f.receipts.items():
        (root / "receipts" / province / f"{seq:08d}.receipt.json").write_bytes(receipt.to_bytes())
    for built in batches:
        (root / "batches" / "44" / f"{built.header.seq:08d}.batch").write_bytes(built.data)
    (root / "batches" / "11" / "00000001.batch").write_bytes(p11.batches[0].data)
    (root / "log" / "leaves.jsonl").write_bytes(b"".join(leaf_bytes(x) + b"\n" for x in f.log.leaves))
    (root / "log" / "checkpoint").write_text(sign_checkpoint(f.log.checkpoint(), f.log_signer))
    return f, root, batches, a


def _run(*args: str):
    result = CliRunner().invoke(audit, [*args, "--json"])
    return result.exit_code, json.loads(result.output)


def _failures(report: dict) -> list[str]:
    return [f"{f['check']} {f['subject']}: {f['reason']}" for f in report["findings"] if not f["ok"]]


def test_spec_9_series_after_two_rotations_and_a_revocation_needs_no_trust_version(rotated):
    _f, root, _batches, _a = rotated
    code, report = _run("series", str(root / "batches" / "44"))
    assert code == 0, _failures(report)
    judged = [f["reason"] for f in report["findings"] if f["check"] == "batch"]
    assert [r.split("trust version ")[1].split(" ")[0] for r in judged] == ["1", "2", "3", "5"]
    assert all("(its log position)" in r for r in judged)
    assert _run("bundle", str(root))[0] == 0


def test_spec_9_batch_and_record_commands_find_the_position_in_the_bundle(rotated, tmp_path):
    _f, root, batches, _a = rotated
    for seq in (1, 2, 3, 4):
        code, report = _run("batch", str(root / "batches" / "44" / f"{seq:08d}.batch"))
        assert code == 0, (seq, _failures(report))
    proof = tmp_path / "teacher.proof.json"
    proof.write_bytes(build_record_proof(batches[0].data, 1))
    code, report = _run("record", str(proof), "--bundle", str(root))
    assert code == 0, _failures(report)


def test_spec_9_loose_files_take_their_positions_from_receipts(rotated, tmp_path):
    _f, root, _batches, _a = rotated
    loose = tmp_path / "loose"
    shutil.copytree(root / "batches" / "44", loose)
    code, report = _run("series", str(loose), "--trust", str(root / "trust"))
    assert code == 1  # no position: batch 1 judged under trust 5, where key A is long revoked
    assert any("no log position was found" in x for x in _failures(report)), _failures(report)
    code, report = _run("series", str(loose), "--trust", str(root / "trust"), "--receipts", str(root / "receipts"))
    assert code == 0, _failures(report)


def test_spec_9_a_batch_signed_after_its_key_was_revoked_fails_at_its_log_position(rotated):
    f, root, batches, a = rotated
    p = f.provinces["44"]
    target = root / "batches" / "44" / "00000003.batch"

    def forge(count: int) -> bytes:
        p.seq, p.version, p.last_hash = 2, batches[1].header.version_to, batches[1].batch_hash
        return p.next_batch(count, signer=a).data

    # the logged header of batch 3, signed again by key A (revoked by trust 3, in force when batch 3 was logged)
    resigned = forge(2)
    assert resigned.split(b"\n")[1:] == batches[2].data.split(b"\n")[1:]  # same header and records: same hash
    target.write_bytes(resigned)
    code, report = _run("series", str(root / "batches" / "44"))
    assert code == 1 and any("valid signature" in x for x in _failures(report)), _failures(report)
    # another batch 3 signed by A: not the logged batch
    target.write_bytes(forge(1))
    code, report = _run("batch", str(target))
    assert code == 1 and any("another batch" in x for x in _failures(report)), _failures(report)
    code, report = _run("batch", str(target), "--trust-version", "3")
    assert code == 1 and any("valid signature" in x for x in _failures(report)), _failures(report)
