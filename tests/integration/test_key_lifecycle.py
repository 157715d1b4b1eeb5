"""Province key lifecycle (docs/national-node-and-sync.md, "Key rotation"; docs/protocol.md §4, §5.2): a key
revoked while a batch it signed waits to be sent no longer strands the province; a new key enrolled with a
one-time token is used from the next round without a restart; the waiting batch is re-signed (same batch hash:
no equivocation) and accepted; the bundle audits; key ids are accepted in the short form the commands print."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from common.cli import tmis
from common.db import utcnow
from common.errors import TmisError
from national_node.intake.models import Batch, Evidence
from provincial_node.config import config_from_env
from provincial_node.sync.keys import SHORT_ID, create_key
from provincial_node.sync.models import SyncBatch
from tests.integration.federation import cli, effective_teacher
from tests.integration.test_sync_inprocess import federation  # noqa: F401 - the fixture


def _signed_by(data: bytes) -> str:
    return json.loads(data.split(b"\n")[0])["signatures"][0]["keyid"]


def test_a_batch_built_before_its_key_was_revoked_is_re_signed_after_recovery(federation, tmp_path):  # noqa: F811
    app, transport, p44, p11, national = federation
    nat_env = app.extensions["test_env"]
    old = p44.client.signer
    effective_teacher(p44, "070")
    transport.fail_next = 100  # the national node is unreachable: the batch is built and signed, not sent
    assert p44.client.run_round().status == "failed"
    transport.fail_next = 0
    with p44.factory() as s:
        (built,) = s.scalars(select(SyncBatch)).all()
        seq, batch_hash = built.seq, built.batch_hash
        assert (built.status, _signed_by(built.data)) == ("built", old.keyid)
    # the key is compromised: the ministry revokes it by the short id `trust show` prints
    out = cli(nat_env, "national", "keys", "revoke", "--key-id", old.keyid[:SHORT_ID], "--reason", "compromised")
    assert "published" in out
    failed = p44.client.run_round()
    assert failed.status == "failed"
    assert failed.errors[0]["phase"] == "keys" and failed.errors[0]["code"] == "protocol_key_untrusted"
    assert "keys rotate" in failed.errors[0]["message"]
    with national() as s:
        assert s.scalar(select(func.count()).select_from(Batch).where(Batch.province_code == "44")) == 0
    # recovery: a one-time token from the ministry, a new key enrolled with it (what `keys rotate` does)
    token = cli(nat_env, "national", "enrol-token", "--province", "44").strip()
    new = create_key(config_from_env(p44.env).signing_key_path, utcnow())
    trust = p44.client.enrol(token, new)
    assert set(trust.province_keys("44").keys) == {new.keyid}
    rnd = p44.client.run_round()  # the same client object: the ring is read again, no restart
    assert rnd.status == "ok", rnd.errors
    assert p44.client.signer.keyid == new.keyid
    with p44.factory() as s:
        again = s.get(SyncBatch, seq)
        assert (again.status, again.batch_hash, _signed_by(again.data)) == ("accepted", batch_hash, new.keyid)
    with national() as s:
        assert s.scalar(select(Batch.batch_hash).where(Batch.province_code == "44", Batch.seq == seq)) == batch_hash
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0
    effective_teacher(p44, "071")
    assert p44.client.run_round().status == "ok"
    bundle = tmp_path / "bundle"
    cli(nat_env, "national", "export", "-o", str(bundle))
    result = CliRunner().invoke(tmis, ["audit", "bundle", str(bundle)], obj={"env": {}})
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(tmis, ["audit", "series", str(bundle / "batches" / "44")], obj={"env": {}})
    assert result.exit_code == 0, result.output


def test_keys_revoke_takes_a_unique_prefix_and_refuses_a_short_or_ambiguous_one(federation):  # noqa: F811
    app, transport, p44, p11, national = federation
    nat_env = app.extensions["test_env"]
    runner = CliRunner()
    for bad, words in (("abc", "8 characters"), ("zzzzzzzzzz", "8 characters"), ("00000000", "no active key")):
        result = runner.invoke(
            tmis, ["national", "keys", "revoke", "--key-id", bad, "--reason", "x"], obj={"env": nat_env}
        )
        assert isinstance(result.exception, TmisError), result.output  # `tmis` prints it and exits 2
        assert words in str(result.exception)
    out = cli(nat_env, "national", "keys", "revoke", "--key-id", p11.client.signer.keyid[:8], "--reason", "test")
    assert "published" in out
