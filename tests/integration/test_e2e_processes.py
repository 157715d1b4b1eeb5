"""The federation as real processes over loopback HTTP (SQLite and PostgreSQL): `tmis national serve`, two
provinces synchronising with `tmis province sync run`, the national node killed mid-round, a province
offline for several rounds, duplicates across provinces, hand-made bad batches, and the exported audit
bundle verified by `tmis audit`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
import requests
from sqlalchemy import func, select

from common.keyfile import read_private_key
from national_node.intake.models import Batch, DuplicateIdentity, TeacherCore
from national_node.ledger.models import LogLeaf
from national_node.provinces.models import Province
from provincial_node.config import config_from_env as provincial_config_from_env
from provincial_node.sync.models import InboxReceived, SyncBatch
from sync_protocol.keys import Signer
from sync_protocol.request_auth import sign_request
from tests.conftest import run_tmis
from tests.integration.conftest import TMIS
from tests.integration.federation import ProvinceNode, effective_teacher

pytestmark = pytest.mark.slow


def _count(engine, model) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(model)).scalar_one()


def _sync(node: ProvinceNode, check: bool = True):
    return run_tmis("province", "sync", "run", env=node.env, check=check, timeout=300)


def test_end_to_end(fed, tmp_path):
    national, p, nat, nat_env = fed
    numbers = [effective_teacher(p["44"], f"{n:03d}") for n in range(1, 41)]
    numbers += [effective_teacher(p["11"], f"{n:03d}", region="110105") for n in range(1, 6)]
    _sync(p["44"])
    _sync(p["11"])
    with nat.connect() as c:
        cores = {r.teacher_number: r for r in c.execute(select(TeacherCore)).all()}
    assert set(cores) == set(numbers)
    row = cores[numbers[0]]
    assert set(row.fields) == {"JBXX"}  # JBDY (wages) never left the province
    assert "JBDY.JBGZ" in row.withheld
    # the national node is killed in the middle of a round; nothing lost or doubled after a restart
    more = [effective_teacher(p["44"], f"{n:03d}") for n in range(41, 201)]
    sync = subprocess.Popen(
        [TMIS, "province", "sync", "run"],
        env={**os.environ, **p["44"].env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(1.0)
    national.kill()
    sync.communicate(timeout=300)
    # the province is offline for a few rounds meanwhile: they fail, nothing is lost
    for _ in range(2):
        assert _sync(p["11"], check=False).returncode == 1
    national.start()
    _sync(p["44"])
    _sync(p["11"])
    assert _count(nat, TeacherCore) == len(numbers) + len(more)
    with nat.connect() as c:
        prov = c.execute(select(Province).where(Province.code == "44")).one()
        batches = c.execute(select(func.count()).select_from(Batch).where(Batch.province_code == "44")).scalar_one()
    assert prov.last_version == 200 and prov.last_seq == batches == 10  # 200 records / 20 per batch
    with p["44"].factory() as s:
        assert s.scalar(select(func.count()).select_from(SyncBatch).where(SyncBatch.status != "accepted")) == 0
    # duplicate identity across the two provinces: a notice in both inboxes
    effective_teacher(p["11"], "001")  # same resident ID as 44's teacher 001
    _sync(p["11"])
    _sync(p["44"])
    assert _count(nat, DuplicateIdentity) == 1
    for node in p.values():
        with node.factory() as s:
            kinds = list(s.scalars(select(InboxReceived.kind)))
            assert kinds.count("duplicate_identity") == 1 and set(kinds) <= {"duplicate_identity", "trust_update"}
    # the exported bundle verifies offline
    bundle = tmp_path / "bundle"
    run_tmis("national", "export", "-o", str(bundle), env=nat_env)
    audit = run_tmis("audit", "bundle", str(bundle), "--json", check=False)
    assert audit.returncode == 0, audit.stdout[-3000:]
    assert json.loads(audit.stdout)["ok"] is True


def _post(national, node: ProvinceNode, body: bytes, signer: Signer | None = None, province: str | None = None):
    province = province or node.code
    signer = signer or Signer.from_pem(read_private_key(provincial_config_from_env(node.env).signing_key_path))
    path = f"/api/v1/provinces/{province}/batches"
    headers = sign_request(signer, province, "POST", path, body)
    return requests.post(national.url + path, data=body, headers=headers, timeout=30)


def _state(nat):
    with nat.connect() as c:
        return (
            _count(nat, LogLeaf),
            _count(nat, TeacherCore),
            _count(nat, Batch),
            c.execute(select(Province.last_seq).where(Province.code == "44")).scalar_one(),
        )


def test_bad_batches_over_http_leave_the_national_state_unchanged(fed):
    national, p, nat, nat_env = fed
    effective_teacher(p["44"], "001")
    _sync(p["44"])
    with p["44"].factory() as s:
        good = s.scalar(select(SyncBatch.data))
    before = _state(nat)
    # identical resend: the same receipt, nothing changes
    r = _post(national, p["44"], good)
    assert r.status_code == 200 and r.json()["new"] is False
    with nat.connect() as c:
        stored = c.execute(select(Batch.receipt)).scalar_one()
    assert json.loads(stored) == r.json()["receipt"]
    lines = good.split(b"\n")
    env = json.loads(lines[0])
    payload = json.loads(base64.b64decode(env["payload"]))
    tampered = good.replace("教师".encode(), "老师".encode(), 1)
    gap_payload = base64.b64encode(json.dumps({**payload, "seq": 5}).encode()).decode()
    cases = {
        "tampered": (tampered, None, None, "protocol_malformed"),
        "header changed without re-signing": (  # a canonical envelope line (§3), the payload swapped
            json.dumps({**env, "payload": gap_payload}, separators=(",", ":"), sort_keys=True).encode()
            + b"\n"
            + b"\n".join(lines[1:]),
            None,
            None,
            "protocol_signature_invalid",
        ),
        "wrong province key": (
            good,
            Signer.from_pem(read_private_key(provincial_config_from_env(p["11"].env).signing_key_path)),
            None,
            "protocol_key_untrusted",
        ),
        "oversized": (b"x" * (70 * 1024 * 1024), None, None, "payload_too_large"),
        "malformed JSON": (b"{not json\n", None, None, "protocol_malformed"),
    }
    # a properly signed batch that skips a sequence number
    from sync_protocol.batch import build_batch, read_header
    from sync_protocol.records import parse_record

    key44 = Signer.from_pem(read_private_key(provincial_config_from_env(p["44"].env).signing_key_path))
    header = read_header(good)[1]
    gap = build_batch(
        province="44",
        seq=header.seq + 2,
        prev_batch_hash="0" * 64,
        created_at=header.created_at,
        schema_version=header.schema_version,
        log_origin=header.log_origin,
        records=[parse_record(x) for x in lines[1:] if x],
        signer=key44,
    )
    cases["gap (seq last + 2, signed)"] = (gap.data, None, None, "protocol_sequence_gap")
    for name, (body, signer, province, code) in cases.items():
        r = _post(national, p["44"], body, signer, province)
        assert r.status_code >= 400, name
        assert r.json()["code"] in (code, "protocol_limit_exceeded"), (name, r.json())
        assert _state(nat) == before, name
    # a replayed request (same nonce) is refused even with a valid signature
    path = "/api/v1/provinces/44/inbox?after=0"
    signer = Signer.from_pem(read_private_key(provincial_config_from_env(p["44"].env).signing_key_path))
    headers = sign_request(signer, "44", "GET", path, b"")
    assert requests.get(national.url + path, headers=headers, timeout=10).status_code == 200
    replay = requests.get(national.url + path, headers=headers, timeout=10)
    assert replay.status_code == 401 and replay.json()["code"] == "protocol_signature_invalid"
    # a revoked key: new batches are refused
    run_tmis("national", "keys", "revoke", "--key-id", signer.keyid, "--reason", "test", env=nat_env)
    before = _state(nat)  # the revocation itself is a new trust version: one more log leaf
    effective_teacher(p["44"], "002")
    result = _sync(p["44"], check=False)
    assert result.returncode == 1 and "protocol_key_untrusted" in result.stderr
    assert _state(nat) == before
