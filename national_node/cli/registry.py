"""``tmis national enrol-token | provinces | keys | trust``: the province registry and trust metadata."""

from __future__ import annotations

import json

import click

from common.db import session_scope, utcnow
from national_node.cli import _runtime
from national_node.ledger import ledger
from national_node.provinces import provinces as province_rows
from national_node.registry import registry, report


@click.command("enrol-token")
@click.option("--province", "code", required=True, help="2-digit province code")
@click.pass_context
def enrol_token(ctx: click.Context, code: str) -> None:
    """Issue a one-time enrolment token for a province (valid 7 days); hand it over out of band. The province
    enrols its first key with it (`tmis province sync enrol`), or a new key when it rotates or recovers from a
    revoked or compromised key (`tmis province keys rotate --token`)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        token = province_rows.issue_token(s, code)
    click.echo(token)


@click.command("provinces")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def provinces(ctx: click.Context, as_json: bool) -> None:
    """Per province: enrolled, last sequence, last seen, lag, records, refused records, evidence."""
    rt = _runtime.runtime(ctx)
    now = utcnow()
    with rt.session_factory() as s:
        rows = report.province_report(s, now)
        current = ledger.current_trust(s)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'code':<5}{'name':<12}{'seq':>6}{'version':>9}{'teachers':>10}{'refused':>9}{'equiv':>7}  last seen")
    for r in rows:
        if r["enrolled"]:
            click.echo(
                f"{r['code']:<5}{r['name']:<12}{r['last_seq']:>6}{r['last_version']:>9}{r['teachers']:>10}"
                f"{r['refused']:>9}{r['equivocations']:>7}  {r['last_seen'] or '-'}"
            )
    click.echo(f"{sum(1 for r in rows if r['enrolled'])} of {len(rows)} provinces enrolled")
    left = current.expires - now
    click.echo(
        f"trust version {current.version} expires {current.expires:%Y-%m-%d}"
        + (" — RENEW NOW: `tmis national trust renew`" if left.days < 30 else "")
    )


@click.group()
def keys() -> None:
    """Province keys: rotation and revocation, each published as a new trust version."""


@keys.command("add")
@click.option("--province", "code", required=True)
@click.option("--public-key", required=True, help="base64 of the new raw Ed25519 public key")
@click.pass_context
def keys_add(ctx: click.Context, code: str, public_key: str) -> None:
    """Rotation step 1: list a new key beside the old one (revoke the old one once the province switched)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        trust = registry.add_key(s, rt.keys(), rt.origin, code, public_key)
    added = province_rows.public_key(public_key).keyid
    click.echo(f"trust version {trust.version} published; province {code} key {added[:16]} added")


@keys.command("revoke")
@click.option("--key-id", required=True, help="the key id, or a unique prefix of at least 8 characters")
@click.option("--reason", required=True)
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, reason: str) -> None:
    """Revoke a province key (a new trust version without it)."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        trust = registry.revoke_key(s, rt.keys(), rt.origin, key_id, reason)
    click.echo(f"trust version {trust.version} published")


@click.group()
def trust() -> None:
    """Trust metadata (root-signed key lists): show and renew."""


@trust.command("show")
@click.pass_context
def trust_show(ctx: click.Context) -> None:
    """The trust version in force, its expiry and the keys it lists."""
    rt = _runtime.runtime(ctx)
    with rt.session_factory() as s:
        t = ledger.current_trust(s)
    click.echo(f"trust version {t.version}, issued {t.issued_at:%Y-%m-%d}, expires {t.expires:%Y-%m-%d}")
    click.echo(f"  root keys ({t.root.threshold} of {len(t.root.keys)}): {', '.join(k[:16] for k in t.root.keys)}")
    for code, ks in sorted(t.provinces.items()):
        click.echo(f"  province {code}: {', '.join(k[:16] for k in ks.keys)}")


@trust.command("renew")
@click.option("--reason", default="renewal before expiry", show_default=True)
@click.pass_context
def trust_renew(ctx: click.Context, reason: str) -> None:
    """Publish the same keys as a new trust version with a new expiry (do this well before it expires;
    batches are refused under expired trust). The new version is logged and routed to every province."""
    rt = _runtime.runtime(ctx)
    with session_scope(rt.session_factory) as s:
        t = registry.renew(s, rt.keys(), rt.origin, reason)
    click.echo(f"trust version {t.version} published, expires {t.expires:%Y-%m-%d}")


COMMANDS = (enrol_token, provinces, keys, trust)
