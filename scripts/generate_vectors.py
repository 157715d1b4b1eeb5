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
    return files


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
