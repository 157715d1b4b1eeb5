"""The audit bundle's layout, named once for the writer (``tmis national export``) and the reader
(``tmis audit bundle`` / ``transfer``), docs/protocol.md §8::

    trust/<version>.trust.json                       DSSE envelopes of every trust version
    batches/<province>/<seq:08d>.batch                batch files
    receipts/<province>/<seq:08d>.receipt.json        receipts
    messages/<province>/<leaf index:08d>.msg          province-signed transfer messages (one per message leaf)
    inbox/<province>/<seq:08d>.msg                    inbox messages routed to each province
    log/leaves.jsonl                                  every log leaf, canonical, in log order
    log/checkpoint                                    the newest signed checkpoint

Pure path arithmetic: nothing here opens a file.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORIES = ("trust", "batches", "receipts", "messages", "inbox", "log")
TRUST_GLOB = "*.trust.json"
BATCH_GLOB = "*.batch"
RECEIPT_GLOB = "*/*.receipt.json"
MESSAGE_GLOB = "*.msg"


def trust_file(root: Path, version: int) -> Path:
    return root / "trust" / f"{version}.trust.json"


def batch_file(root: Path, province: str, seq: int) -> Path:
    return root / "batches" / province / f"{seq:08d}.batch"


def receipt_file(root: Path, province: str, seq: int) -> Path:
    return root / "receipts" / province / f"{seq:08d}.receipt.json"


def message_file(root: Path, province: str, leaf_index: int) -> Path:
    return root / "messages" / province / f"{leaf_index:08d}.msg"


def inbox_file(root: Path, province: str, seq: int) -> Path:
    return root / "inbox" / province / f"{seq:08d}.msg"


def leaves_file(root: Path) -> Path:
    return root / "log" / "leaves.jsonl"


def checkpoint_file(root: Path) -> Path:
    return root / "log" / "checkpoint"


def is_bundle(root: Path) -> bool:
    return leaves_file(root).is_file() and checkpoint_file(root).is_file() and (root / "trust").is_dir()


def find_root(path: Path, depth: int = 4) -> Path | None:
    """The bundle a file or directory lies in (``path`` itself or one of its ``depth`` nearest parents), if any:
    a batch file's log position is looked up there."""
    here = path.resolve()
    for candidate in [here, *list(here.parents)[:depth]]:
        if candidate.is_dir() and is_bundle(candidate):
            return candidate
    return None
