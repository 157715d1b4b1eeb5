"""``tmis national init`` and ``tmis national serve``."""

from __future__ import annotations

from collections.abc import Callable

import click

from common import migrations
from common.cli import configure_logging, serve_wsgi, serve_wsgi_workers
from common.db import redact_url, session_scope
from common.errors import ConfigError, ErrorCode
from national_node import MIGRATIONS_DIR, sealing
from national_node.app import create_app
from national_node.cli import _runtime
from national_node.db import NodeSetting
from national_node.intake import identity, verifying
from national_node.jobs import start_scheduler
from national_node.keys import generate_keys, key_files
from national_node.ledger import ledger


@click.command("serve")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="threads per process")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="worker processes sharing the port (PostgreSQL: one per core verifies batches in parallel)",
)
@click.pass_context
def serve(ctx: click.Context, threads: int, workers: int) -> None:
    """Serve the node's API with waitress on TMIS_BIND (default 127.0.0.1:8000); expire overdue transfer
    requests hourly (in the supervising process only, with --workers)."""
    rt = _runtime.runtime(ctx)
    configure_logging(rt.config.log_level, rt.config.log_format)
    seal_keys = sealing.seal_keys_of(rt.keys())  # refuses to start without the seal key file
    with session_scope(rt.session_factory) as s:
        if indexed := identity.reindex(
            s, seal_keys
        ):  # rows from before sealed identities (migration 0008_sealed_identity)
            click.echo(f"computed the keyed identity index of {indexed} core records", err=True)
    # batches verify in worker processes: only the setting here; each serving process starts its own pool on first
    # use (after the fork, with --workers)
    verifying.configure(rt.config.verify_workers)
    if workers > 1:

        def jobs() -> Callable[[], None]:
            scheduler = start_scheduler(rt)
            return lambda: scheduler.shutdown(wait=False)

        serve_wsgi_workers(
            lambda: create_app(rt.config, rt),
            rt.config.bind_host,
            rt.config.bind_port,
            workers,
            threads,
            max_body=rt.config.max_batch_bytes,
            too_large_code=ErrorCode.PROTOCOL_LIMIT_EXCEEDED,
            after_fork=lambda: rt.engine.dispose(close=False),  # no connection shared with the parent
            in_parent=jobs,
        )
        return
    scheduler = start_scheduler(rt)
    app = create_app(rt.config, rt)
    try:
        serve_wsgi(
            app,
            rt.config.bind_host,
            rt.config.bind_port,
            threads,
            max_body=rt.config.max_batch_bytes,
            too_large_code=ErrorCode.PROTOCOL_LIMIT_EXCEEDED,
        )
    finally:
        scheduler.shutdown(wait=False)
        verifying.stop()


@click.command("init")
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the national node: database, root keys (3, threshold 2), log key, message key and the seal key file
    (files 0600 under <data dir>/keys), trust version 1, and the acceptance log's first leaf."""
    rt = _runtime.runtime(ctx)
    config = rt.config
    config.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(rt.engine, MIGRATIONS_DIR)
    with rt.session_factory() as s:
        if s.get(NodeSetting, "log_origin") is not None:
            raise ConfigError(
                "this database already holds an initialised national node",
                details={
                    "variable": "TMIS_DATABASE_URL",
                    "value": redact_url(config.database.url),
                    "reason": "initialised",
                },
            )
    if any(p.exists() for p in [*key_files(rt.keys_dir).values(), sealing.key_path(rt.keys_dir)]):
        raise ConfigError(
            f"key files already exist in {rt.keys_dir}; refusing to overwrite them",
            details={"variable": "TMIS_DATA_DIR", "value": str(rt.keys_dir), "reason": "exists"},
        )
    keys = generate_keys(rt.keys_dir)
    sealing.create_key_file(rt.keys_dir)
    with session_scope(rt.session_factory) as s:
        s.add(NodeSetting(key="log_origin", value=config.log_origin))
        s.add(NodeSetting(key="log_head", value="0"))
        s.flush()
        trust = ledger.publish_trust(s, keys, config.log_origin, "national node initialised")
    click.echo(f"initialised national node, log origin {config.log_origin}")
    click.echo(f"  database   {redact_url(config.database.url)}")
    click.echo(f"  keys       {rt.keys_dir} (0600): root-1..3 (threshold 2), log, messages, seal-keys.json")
    click.echo(f"  trust      version {trust.version}, root key ids " + ", ".join(k[:16] for k in trust.root.keys))


COMMANDS = (serve, init)
