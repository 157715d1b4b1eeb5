#!/usr/bin/env python3
"""Build the tmis-sync/1 golden vectors in tests/vectors/ from fixed test keys (tests.protocol.simulator).

    python scripts/generate_vectors.py            # (re)write tests/vectors/
    python scripts/generate_vectors.py --check    # exit 1 if the checked-in files differ

Ed25519 signatures are deterministic and every time is fixed, so the output is byte-for-byte stable:
a format change shows up as a diff (tests/protocol/test_vectors.py runs the check).
The directory is also a complete audit bundle (docs/protocol.md §8): `tmis audit bundle tests/vectors`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the simulator lives in tests/, not in the product

from sync_protocol.audit import build_record_proof
from sync_protocol.canonical import canonical_bytes
from sync_protocol.log import consistency_proof_bytes, leaf_bytes, sign_checkpoint
from tests.protocol.simulator import EPOCH, SimFederation

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors"


def build_vectors() -> dict[str, bytes]:
    fed = SimFederation()
    files: dict[str, bytes] = {}
    p44, p11 = fed.provinces["44"], fed.provinces["11"]
    plan = [("44", 3), ("11", 2), ("44", 2)]
    for i, (code, n) in enumerate(plan):
        prov = fed.provinces[code]
        built = prov.next_batch(n)
        receipt = fed.submit(code, built.data, now=EPOCH + dt.timedelta(days=1, hours=i))
        files[f"batches/{code}/{built.header.seq:08d}.batch"] = built.data
        files[f"receipts/{code}/{built.header.seq:08d}.receipt.json"] = receipt.to_bytes()
    old = fed.log.checkpoint()
    files["checkpoints/old.checkpoint"] = sign_checkpoint(old, fed.log_signer).encode()
    # trust version 2 rotates province 44 to a new key, keeping the old one (overlap)
    from tests.protocol.simulator import fixed_signer

    new44 = fixed_signer("province-44-2027")
    doc2 = fed.publish_trust(province_keys={"11": [p11.signer], "44": [p44.signer, new44]})
    fed.rotate_trust(doc2, EPOCH + dt.timedelta(days=2))
    built = p44.next_batch(4, signer=new44)
    receipt = fed.submit("44", built.data, now=EPOCH + dt.timedelta(days=2, hours=1))
    files[f"batches/44/{built.header.seq:08d}.batch"] = built.data
    files[f"receipts/44/{built.header.seq:08d}.receipt.json"] = receipt.to_bytes()
    _messages(fed, files, new44)
    new = fed.log.checkpoint()
    files["checkpoints/new.checkpoint"] = sign_checkpoint(new, fed.log_signer).encode()
    files["proofs/consistency.json"] = consistency_proof_bytes(old, new, fed.log.consistency(old.size))
    files["proofs/record.json"] = build_record_proof(files["batches/44/00000002.batch"], 1)
    for i, doc in enumerate(fed.trust_docs, start=1):
        files[f"trust/{i}.trust.json"] = doc
    files["log/leaves.jsonl"] = b"".join(leaf_bytes(leaf) + b"\n" for leaf in fed.log.leaves)
    files["log/checkpoint"] = files["checkpoints/new.checkpoint"]
    files["keys/public.json"] = canonical_bytes(
        {
            "root": [s.public.to_json() for s in fed.roots],
            "log": fed.log_signer.public.to_json(),
            "messages": fed.message_signer.public.to_json(),
            "provinces": {
                "11": [p11.signer.public.to_json()],
                "44": [p44.signer.public.to_json(), new44.public.to_json()],
            },
        }
    )
    files["requests/push-44-3.json"] = _signed_request(files["batches/44/00000003.batch"], new44)
    files["digest/example.json"] = _digest_example(files)
    return files


T = EPOCH + dt.timedelta(days=3)  # the transfers happen on day 3, under trust version 2


def _at(hours: int) -> dt.datetime:
    return T + dt.timedelta(hours=hours)


def _messages(fed: SimFederation, files: dict[str, bytes], new44) -> None:
    """Every upward (province-signed transfer message, logged) and downward (inbox) message kind: province 11
    asks 44 for a teacher, 44 approves both steps and sends the file; 11 asks for another and withdraws.
    Inboxes: 44 and 11 get the trust update, the request and answers, the completion (the file only to 11), the
    closing of the withdrawn request, and a duplicate-identity notice."""
    from sync_protocol.canonical import format_time
    from sync_protocol.identifiers import make_teacher_number
    from sync_protocol.inbox import build_inbox_message
    from sync_protocol.log import message_leaf
    from sync_protocol.transfer import file_hash, sign_transfer_message, transfer_payload

    p11 = fed.provinces["11"]
    tn, tn2 = make_teacher_number("44", 1), make_teacher_number("44", 2)
    request = {
        "transfer_id": "11-1-vector",
        "kind": "transfer",
        "teacher_number": tn,
        "identity": {"doc_type": "1", "doc_number": "440106197101010011"},
        "from_province": "44",
        "to_province": "11",
        "from_school": None,
        "receiving_school": {"code": "2111000001", "name": "实验小学"},
        "rotation": None,
        "reason": "夫妻团聚",
        "requested_at": format_time(_at(0)),
        "expires_at": format_time(_at(24 * 30)),
    }

    def answer(step: str, hours: int) -> dict:
        return {
            "transfer_id": "11-1-vector",
            "step": step,
            "decision": "approve",
            "reason": None,
            "answered_at": format_time(_at(hours)),
        }

    file = {
        "groups": {"JBXX": {"XM": "教师1", "XBM": "1"}},
        "history": [{"at": "2026-01-01T00:00:00Z", "action": "register"}],
    }
    second = {
        **request,
        "transfer_id": "11-2-vector",
        "teacher_number": tn2,
        "identity": {"doc_type": "1", "doc_number": "440106197101010022"},
    }
    upward = [
        ("11", p11.signer, "transfer_request", request, 0),
        ("44", new44, "transfer_answer", answer("sending_school", 1), 1),
        ("44", new44, "transfer_answer", answer("sending_bureau", 2), 2),
        (
            "44",
            new44,
            "transfer_file",
            {
                "transfer_id": "11-1-vector",
                "teacher_number": tn,
                "file": file,
                "file_hash": file_hash(file),
                "sent_at": format_time(_at(3)),
            },
            3,
        ),
        ("11", p11.signer, "transfer_request", second, 4),
        (
            "11",
            p11.signer,
            "transfer_withdrawal",
            {"transfer_id": "11-2-vector", "reason": "本人放弃", "withdrawn_at": format_time(_at(5))},
            5,
        ),
    ]
    for province, signer, kind, body, hours in upward:
        payload = transfer_payload(province=province, kind=kind, created_at=_at(hours), body=body)
        index = fed.log.append(
            message_leaf(
                province=province,
                kind=kind,
                transfer_id=body["transfer_id"],
                message_hash=hashlib.sha256(payload).hexdigest(),
                accepted_at=_at(hours),
                trust_version=fed.trust.version,
            )
        )
        files[f"messages/{province}/{index:08d}.msg"] = sign_transfer_message(payload, signer)
    trust_update = {"version": 2, "envelope": json.loads(fed.trust_docs[1])}
    completion = {
        "transfer_id": "11-1-vector",
        "teacher_number": tn,
        "from_province": "44",
        "to_province": "11",
        "file_hash": file_hash(file),
        "completed_at": format_time(_at(3)),
    }
    closed = {
        "transfer_id": "11-2-vector",
        "outcome": "withdrawn",
        "reason": "本人放弃",
        "closed_at": format_time(_at(5)),
    }
    duplicate = {
        "doc_type": "1",
        "teacher_numbers": [
            {"teacher_number": make_teacher_number("11", 3), "province": "11"},
            {"teacher_number": make_teacher_number("44", 3), "province": "44"},
        ],
        "detected_at": format_time(_at(6)),
    }
    inbox = {
        "44": [
            ("trust_update", trust_update, -22),
            ("transfer_request", request, 0),
            ("transfer_completion", {**completion, "file": None}, 3),
            ("transfer_request", second, 4),
            ("transfer_closed", closed, 5),
            ("duplicate_identity", duplicate, 6),
        ],
        "11": [
            ("trust_update", trust_update, -22),
            ("transfer_answer", answer("sending_school", 1), 1),
            ("transfer_answer", answer("sending_bureau", 2), 2),
            ("transfer_completion", {**completion, "file": file}, 3),
            ("transfer_closed", closed, 5),
            ("duplicate_identity", duplicate, 6),
        ],
    }
    for province, messages in inbox.items():
        for seq, (kind, body, hours) in enumerate(messages, start=1):
            files[f"inbox/{province}/{seq:08d}.msg"] = build_inbox_message(
                province=province, seq=seq, kind=kind, created_at=_at(hours), body=body, signer=fed.message_signer
            )


def _signed_request(body: bytes, signer) -> bytes:
    """A signed push of a batch (docs/protocol.md §14): what is signed and the headers that carry it."""
    from sync_protocol.request_auth import sign_request, signed_message

    path, now, nonce = "/api/v1/provinces/44/batches", EPOCH + dt.timedelta(days=2, hours=1), "vector-nonce-0000000001"
    headers = sign_request(signer, "44", "POST", path, body, now=now, nonce=nonce)
    message = signed_message("POST", path, "44", headers["X-Tmis-Timestamp"], nonce, body)
    return canonical_bytes(
        {
            "method": "POST",
            "path": path,
            "content_type": "application/vnd.tmis.batch.v1",
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_file": "batches/44/00000003.batch",
            "signed_message": message.decode("utf-8"),
            "headers": headers,
        }
    )


def _digest_example(files: dict[str, bytes]) -> bytes:
    """The core-view digest (docs/protocol.md §16) of province 44 after its batches: leaves, buckets, root."""
    from sync_protocol import digest as D
    from sync_protocol.records import parse_record, record_hash

    leaves: dict[str, D.Leaf] = {}
    for seq in (1, 2, 3):
        for line in files[f"batches/44/{seq:08d}.batch"][:-1].split(b"\n")[1:]:
            r = parse_record(line)
            leaves[r.teacher_number] = D.Leaf(r.teacher_number, r.version, record_hash(line).hex())
    by_bucket: dict[int, list[D.Leaf]] = {}
    for leaf in leaves.values():
        by_bucket.setdefault(D.bucket_of(leaf.teacher_number), []).append(leaf)
    buckets = {b: D.bucket_digest(ls) for b, ls in by_bucket.items()}
    nodes = D.node_digests(buckets)
    return canonical_bytes(
        {
            "leaves": [
                {"line": leaf.line().decode(), "bucket": D.bucket_of(leaf.teacher_number)}
                for leaf in sorted(leaves.values())
            ],
            "buckets": {str(b): d for b, d in sorted(buckets.items())},
            "empty_bucket": D.EMPTY_BUCKET,
            "nodes": {str(n): d for n, d in enumerate(nodes) if d != D.EMPTY_NODE},
            "empty_node": D.EMPTY_NODE,
            "root": D.root_of(nodes),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the checked-in files instead of writing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    files = build_vectors()
    if args.check:
        existing = {str(p.relative_to(args.out)) for p in args.out.rglob("*") if p.is_file()}
        bad = sorted(
            name
            for name, data in files.items()
            if not (args.out / name).is_file() or (args.out / name).read_bytes() != data
        )
        extra = sorted(existing - set(files))
        for name in bad:
            print(f"differs: {name}")
        for name in extra:
            print(f"not generated: {name}")
        return 1 if bad or extra else 0
    for name, data in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
