"""A national node for the national areas' tests: migrated database, keys in a temp dir, trust version 1, on
SQLite and PostgreSQL (``db_session`` rolls everything back after each test)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from common.db import utcnow
from national_node import sealing
from national_node.db import NodeSetting
from national_node.keys import NodeKeys, generate_keys
from national_node.ledger import ledger
from national_node.provinces import provinces
from national_node.registry import registry
from sync_protocol.batch import build_batch
from sync_protocol.keys import Signer
from tests.protocol.simulator import fixed_signer, sample_record

ORIGIN = "test.tmis/log/v1"


@pytest.fixture
def node() -> str:
    return "national"


@pytest.fixture(scope="session")
def node_keys(tmp_path_factory: pytest.TempPathFactory) -> NodeKeys:
    keys_dir = tmp_path_factory.mktemp("national-keys")
    sealing.create_key_file(keys_dir)
    return generate_keys(keys_dir)


@dataclass
class Nation:
    session: Session
    keys: NodeKeys
    origin: str = ORIGIN

    def enrol(self, code: str, signer: Signer | None = None) -> Signer:
        """Enrol ``code`` with a fixed test key, as ``tmis national enrol-token`` + ``tmis province sync enrol``."""
        signer = signer or fixed_signer(f"province {code}")
        token = provinces.issue_token(self.session, code)
        public = base64.b64encode(signer.public.raw).decode()
        registry.enrol(self.session, self.keys, self.origin, code, token, public)
        return signer

    def batch(self, signer: Signer, seq: int, versions, prev: str | None = None, **record_options):
        """A batch of province 44's sample records with these versions, signed by ``signer``."""
        return build_batch(
            province="44",
            seq=seq,
            prev_batch_hash=prev,
            created_at=utcnow(),
            schema_version="test",
            log_origin=self.origin,
            records=[sample_record("44", v, **record_options) for v in versions],
            signer=signer,
        )


@pytest.fixture
def nation(db_session: Session, node_keys: NodeKeys) -> Nation:
    db_session.add(NodeSetting(key="log_origin", value=ORIGIN))
    db_session.add(NodeSetting(key="log_head", value="0"))
    db_session.flush()
    ledger.publish_trust(db_session, node_keys, ORIGIN, "test node", utcnow())
    return Nation(db_session, node_keys)
