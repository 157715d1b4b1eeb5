"""The national node's own keys, in ``<data dir>/keys`` as 0600 PEM files: three root keys (threshold 2 — in a
real deployment the root keys are kept offline and only brought in to sign a new trust version), the log
key (checkpoints) and the message key (inbox messages). The seal key file beside them (``seal-keys.json``: the
seal private keys and the identity index key) is read by :mod:`national_node.sealing`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common.keyfile import read_private_key, write_private_key
from sync_protocol.keys import Signer

ROOT_KEYS, ROOT_THRESHOLD = 3, 2


@dataclass(frozen=True)
class NodeKeys:
    roots: tuple[Signer, ...]
    log: Signer
    messages: Signer
    keys_dir: Path | None = None  # where the seal key file is (national_node.sealing)


def key_files(keys_dir: Path) -> dict[str, Path]:
    names = [f"root-{i}" for i in range(1, ROOT_KEYS + 1)] + ["log", "messages"]
    return {n: keys_dir / f"{n}.key" for n in names}


def generate_keys(keys_dir: Path) -> NodeKeys:
    signers = {}
    for name, path in key_files(keys_dir).items():
        signers[name] = Signer.generate()
        write_private_key(path, signers[name].to_pem())
    return NodeKeys(
        tuple(signers[f"root-{i}"] for i in range(1, ROOT_KEYS + 1)), signers["log"], signers["messages"], keys_dir
    )


@cache
def load_keys(keys_dir: Path) -> NodeKeys:
    files = key_files(keys_dir)
    s = {n: Signer.from_pem(read_private_key(p)) for n, p in files.items()}
    return NodeKeys(tuple(s[f"root-{i}"] for i in range(1, ROOT_KEYS + 1)), s["log"], s["messages"], keys_dir)
