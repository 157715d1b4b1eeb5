#!/usr/bin/env python3
"""Vendor the pages' front-end assets from their npm packages (scripts/vendor-assets).

Reads ``provincial_node/web/static/vendor/assets.toml``: for every package, downloads its tarball from the npm
registry at the pinned version, checks the registry's sha512 integrity written in the manifest, extracts the
listed files and the licence into ``static/vendor/<name>/``, records each file's sha256 in ``SHA256SUMS`` and
writes ``LICENSES.md``. The nodes serve these files themselves; nothing is loaded from a CDN.

    scripts/vendor-assets            # (re)vendor everything
    scripts/vendor-assets --check    # offline: every vendored file matches SHA256SUMS (exit 1 otherwise)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import tarfile
import tomllib
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "provincial_node" / "web" / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


def _manifest() -> dict:
    return tomllib.loads((VENDOR / "assets.toml").read_text(encoding="utf-8"))


def _download(package: str, version: str) -> bytes:
    import requests

    name = package.split("/")[-1]
    url = f"{REGISTRY}/{package}/-/{name}-{version}.tgz"
    r = requests.get(url, timeout=120)
    r.raise_for_status()
    return r.content


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        sys.exit(f"{what}: the tarball does not match the pinned integrity {integrity[:24]}…")


def vendor() -> None:
    sums, licences = [], []
    for name, spec in _manifest().items():
        package, version = spec.get("package", name), spec["version"]
        data = _download(package, version)
        _check_integrity(data, spec["integrity"], f"{package}@{version}")
        target = VENDOR / name
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for rel in [*spec["files"], spec["licence_file"]]:
                member = tar.extractfile(f"package/{rel}")
                if member is None:
                    sys.exit(f"{package}@{version} has no {rel}")
                content = member.read()
                out = target / Path(rel).name
                out.write_bytes(content)
                sums.append(f"{hashlib.sha256(content).hexdigest()}  {name}/{out.name}")
        licences.append(f"| {package} | {version} | {spec['license']} | `{name}/{Path(spec['licence_file']).name}` |")
        print(f"vendored {package}@{version} into {target.relative_to(VENDOR.parent.parent.parent.parent)}")
    (VENDOR / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    (VENDOR / "LICENSES.md").write_text(
        "# Vendored front-end assets and their licences\n\n"
        "Written by `scripts/vendor-assets` from `assets.toml`; each file's sha256 is in `SHA256SUMS`.\n\n"
        "| npm package | version | licence | licence text |\n|---|---|---|---|\n" + "\n".join(licences) + "\n",
        encoding="utf-8",
    )


def check() -> int:
    bad = []
    for line in (VENDOR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, rel = line.split("  ", 1)
        path = VENDOR / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(rel)
    listed = {line.split("  ", 1)[1] for line in (VENDOR / "SHA256SUMS").read_text(encoding="utf-8").splitlines()}
    wanted = {
        f"{name}/{Path(f).name}" for name, spec in _manifest().items() for f in [*spec["files"], spec["licence_file"]]
    }
    bad += sorted(wanted - listed)
    for rel in bad:
        print(f"vendored file missing or changed: {rel}", file=sys.stderr)
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="offline check of the vendored files")
    args = ap.parse_args()
    if args.check:
        return check()
    vendor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
