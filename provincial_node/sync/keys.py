"""The province's signing keys (密钥): a key ring that lets the node rotate without a restart, and the
re-signing of what was built but not yet accepted.

* The **ring** is the key file created by ``tmis province init`` (``TMIS_SIGNING_KEY_PATH``) and every key
  ``tmis province keys rotate`` added beside it (``<key path>.d/<UTC time>-<key id>.key``, mode 0600, never
  overwritten). Keys are files, not database rows: a database restored from a backup keeps the keys the node
  holds today.
* The **current key** is the newest key of the ring that the newest verified trust version lists for the
  province. It is chosen again at the start of every round, after the round fetched the trust versions
  (:func:`refresh`), so a rotation takes effect with the next round, and a ``serve`` process needs no restart.
  When the trust lists none of the ring's keys (the key was revoked), the round stops with
  ``protocol_key_untrusted`` and says how to recover; nothing built is lost.
* **Re-signing** (:func:`resign_pending`): a batch built but not yet accepted whose envelope is not signed by
  the current key gets a new envelope over the *same header payload*, signed by the current key. The batch
  hash is the SHA-256 of the header payload (docs/protocol.md §5.2), which commits to the sequence number,
  the previous batch and every record; the signature is outside it. A re-signed batch therefore is the same
  batch (the national node's equivocation check compares batch hashes), and a resend of a batch accepted
  under the old key gets the stored receipt. Transfer messages are signed when they are sent, so they always
  carry the current key (their ``message_hash`` covers the payload only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.errors import ErrorCode, SyncError
from common.keyfile import read_private_key, write_private_key
from provincial_node.sync.models import BatchStatus, SyncBatch
from sync_protocol.dsse import BATCH_PAYLOAD_TYPE, encode_envelope, parse_envelope, sign_envelope
from sync_protocol.keys import Signer
from sync_protocol.trust import TrustMetadata

SHORT_ID = 16  # key ids are printed in this many hex characters; every command takes a unique prefix of ≥ 8


def ring_dir(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".d")


@dataclass(frozen=True)
class KeyRing:
    """The node's signing keys, oldest first."""

    signers: tuple[Signer, ...]
    paths: tuple[Path, ...] = ()

    @classmethod
    def load(cls, key_path: Path) -> KeyRing:
        paths = [key_path] if key_path.exists() or not ring_dir(key_path).is_dir() else []
        if ring_dir(key_path).is_dir():
            paths += sorted(ring_dir(key_path).glob("*.key"))
        return cls(tuple(Signer.from_pem(read_private_key(p)) for p in paths), tuple(paths))

    @classmethod
    def of(cls, signer: Signer) -> KeyRing:
        return cls((signer,))

    def listed(self, trust: TrustMetadata, province: str) -> list[Signer]:
        keys = trust.province_keys(province).keys if province in trust.provinces else {}
        return [s for s in self.signers if s.keyid in keys]

    def current(self, trust: TrustMetadata, province: str) -> Signer:
        """The newest key the trust lists for the province; raises when it lists none of them."""
        listed = self.listed(trust, province)
        if not listed:
            raise SyncError(
                f"trust version {trust.version} lists no key of this node for province {province} (revoked?); "
                "recover with an enrolment token from the ministry: `tmis province keys rotate --token …` "
                "(docs/national-node-and-sync.md, 'A revoked or compromised key')",
                code=ErrorCode.PROTOCOL_KEY_UNTRUSTED,
                details={"trust_version": trust.version, "keys": [s.keyid[:SHORT_ID] for s in self.signers]},
            )
        return listed[-1]

    def newest(self) -> Signer:
        return self.signers[-1]


def create_key(key_path: Path, now: dt.datetime) -> Signer:
    """A new key in the ring (file mode 0600, never overwriting one)."""
    signer = Signer.generate()
    write_private_key(ring_dir(key_path) / f"{now:%Y%m%dT%H%M%SZ}-{signer.keyid[:SHORT_ID]}.key", signer.to_pem())
    return signer


def unenrolled_newest(ring: KeyRing, trust: TrustMetadata | None, province: str) -> Signer | None:
    """The newest key of the ring when no trust version lists it yet (a rotation whose enrolment did not get
    through): ``keys rotate`` enrols it instead of creating yet another key."""
    if len(ring.signers) < 2 or trust is None:
        return None
    newest = ring.newest()
    return None if newest in ring.listed(trust, province) else newest


def resign_pending(session: Session, signer: Signer) -> list[int]:
    """Give every built, not yet accepted batch an envelope signed by ``signer`` where it lacks one; returns the
    sequence numbers re-signed. The header payload (and so the batch hash) is unchanged."""
    done = []
    stmt = select(SyncBatch.seq, SyncBatch.data).where(SyncBatch.status == BatchStatus.BUILT).order_by(SyncBatch.seq)
    for seq, data in session.execute(stmt).all():
        end = data.index(b"\n")
        env = parse_envelope(data[:end])
        if signer.keyid in {keyid for keyid, _sig in env.signatures}:
            continue
        fresh = encode_envelope(sign_envelope(env.payload, BATCH_PAYLOAD_TYPE, [signer]))
        session.execute(update(SyncBatch).where(SyncBatch.seq == seq).values(data=fresh + data[end:]))
        done.append(seq)
    return done
