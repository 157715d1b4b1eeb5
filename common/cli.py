"""The ``tmis`` command line: one click group, sub-groups found by entry point.

``common`` must not import a node, so ``tmis province …``, ``tmis national …`` and ``tmis audit …`` are
registered by the packages themselves under the ``tmis.commands`` entry-point group (``pyproject.toml``)
and loaded lazily here. This module is also the one place that reads ``os.environ``: it hands a copy to
the sub-commands through ``ctx.obj["env"]``; they build their typed config from it.

Shared helpers for node CLIs live here too: the ``db`` group (upgrade / current / check) and ``serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from common.errors import TmisError


class _LazyGroup(click.Group):
    """Root group that loads the ``tmis.commands`` entry points on demand."""

    def _eps(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="tmis.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._eps()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._eps().get(name)
        return ep.load() if ep is not None else None


@click.group(cls=_LazyGroup)
@click.pass_context
def tmis(ctx: click.Context) -> None:
    """全国教师管理信息系统 tmis: provincial node, national node, sync protocol and audit tools."""
    ctx.ensure_object(dict)
    ctx.obj.setdefault("env", dict(os.environ))


@tmis.group()
def catalogue() -> None:
    """The indicator catalogue (指标体系) and code tables (代码表)."""


@catalogue.command("show")
@click.option("--group", "group_code", help="only this record group, e.g. NDKH")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def catalogue_show(group_code: str | None, as_json: bool) -> None:
    """Load and check the catalogue; list its record groups with every field (code, label, type, code table,
    required, who fills it, core indicator, record key) and its code tables."""
    from common.catalogue import load_catalogue

    cat = load_catalogue()
    if group_code and group_code.upper() not in cat.groups:
        raise click.BadParameter(
            f"no record group {group_code!r} (one of {', '.join(cat.groups)})", param_hint="--group"
        )
    groups = [cat.group(group_code.upper())] if group_code else cat.ordered_groups

    def field_json(f: Any, key: tuple[str, ...]) -> dict[str, Any]:
        return {
            "code": f.code,
            "label": f.label,
            "label_en": f.label_en,
            "type": f.type,
            "code_table": f.code_table,
            "required": f.required,
            "filled_by": f.filled_by,
            "core": f.core,
            "key": f.code in key,
            "max_length": f.max_length,
        }

    summary = {
        "version": cat.version,
        "groups": [
            {
                "code": g.code,
                "label": g.label,
                "multiple": g.multiple,
                "key": list(g.key),
                "stages": sorted(g.stages),
                "fields": [field_json(f, g.key) for f in g.fields],
                "core_fields": [{"code": f.code, "label": f.label} for f in g.core_fields],
            }
            for g in groups
        ],
        "code_tables": {
            t.id: {"label": t.label, "codes": len(t.codes), "verified": t.verified, "source": t.source}
            for t in cat.code_tables.values()
        },
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"catalogue {cat.version[:16]}: {len(cat.groups)} record groups, "
        f"{sum(len(g.fields) for g in cat.groups.values())} fields "
        f"({sum(len(g.core_fields) for g in cat.groups.values())} core), {len(cat.code_tables)} code tables"
    )
    click.echo("  field marks: * required  ★ core indicator (synced to the national node)  ⚷ record key")
    for g in summary["groups"]:
        kind = f"multi-record, key {'+'.join(g['key'])}" if g["multiple"] else "single record"
        click.echo(f"\n{g['code']} {g['label']} ({kind}; {len(g['fields'])} fields, {len(g['core_fields'])} core)")
        for f in g["fields"]:
            marks = ("*" if f["required"] else " ") + ("★" if f["core"] else " ") + ("⚷" if f["key"] else " ")
            typ = f["type"] + (f":{f['code_table']}" if f["code_table"] else "")
            click.echo(f"  {marks} {f['code']:<14} {typ:<16} {f['filled_by']:<8} {f['label']}")
    if group_code:
        return
    click.echo("\ncode tables (tmis catalogue table ID prints one):")
    for tid, t in summary["code_tables"].items():
        click.echo(
            f"  {tid:<8} {t['codes']:>4} codes  {t['label']}" + ("" if t["verified"] else "  (awaiting confirmation)")
        )


@catalogue.command("table")
@click.argument("table_id")
def catalogue_table(table_id: str) -> None:
    """Print one code table as CSV (code,label,parent)."""
    from common.catalogue import load_catalogue

    cat = load_catalogue()
    if table_id.upper() not in cat.code_tables:
        raise click.BadParameter(f"no code table {table_id!r}", param_hint="TABLE_ID")
    table = cat.table(table_id.upper())
    click.echo("code,label,parent")
    for c in table.codes.values():
        click.echo(f"{c.code},{c.label},{'|'.join(c.parents)}")


# ------------------------------------------------------------------------------- helpers for node CLIs


def open_engine(ctx: click.Context, database: Any) -> Any:
    """An engine for this command, disposed when the command's context closes (no pooled connection is
    left open behind a CLI command, which matters when commands run inside one process, e.g. in tests)."""
    from common.db import create_db_engine

    engine = create_db_engine(database)
    ctx.call_on_close(engine.dispose)
    return engine


def db_group(migrations_dir: Path, load_config: Callable[[dict[str, str]], Any]) -> click.Group:
    """The ``db`` sub-group of a node: upgrade, current, check (drift between models and migrations), backup,
    restore."""

    @click.group("db")
    def db() -> None:
        """Database schema (Alembic migrations)."""

    def _engine(ctx: click.Context) -> Any:
        config = load_config(ctx.obj["env"])
        config.data_dir.mkdir(parents=True, exist_ok=True)
        return config, open_engine(ctx, config.database)

    @db.command("upgrade")
    @click.option("--revision", default="head", show_default=True)
    @click.pass_context
    def upgrade(ctx: click.Context, revision: str) -> None:
        """Apply migrations up to REVISION."""
        from common import migrations
        from common.db import redact_url

        config, engine = _engine(ctx)
        migrations.upgrade(engine, migrations_dir, revision)
        click.echo(f"database {redact_url(config.database.url)} at revision {migrations.current_revision(engine)}")

    @db.command("current")
    @click.pass_context
    def current(ctx: click.Context) -> None:
        """Print the database revision and the code's head revision."""
        from common import migrations

        _config, engine = _engine(ctx)
        click.echo(
            f"database: {migrations.current_revision(engine)}  code head: {migrations.head_revision(migrations_dir)}"
        )

    @db.command("check")
    @click.pass_context
    def check(ctx: click.Context) -> None:
        """Fail if the models and the migrations disagree (run on a database at head)."""
        from common import migrations

        _config, engine = _engine(ctx)
        if migrations.current_revision(engine) != migrations.head_revision(migrations_dir):
            raise click.ClickException("database is not at head; run `db upgrade` first")
        diffs = migrations.check_drift(engine, migrations_dir)
        if diffs:
            for d in diffs:
                click.echo(f"drift: {d}", err=True)
            raise click.ClickException(f"{len(diffs)} difference(s) between models and migrations")
        click.echo("no drift: models match the migrations")

    @db.command("backup")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
    @click.pass_context
    def backup_cmd(ctx: click.Context, output: Path) -> None:
        """Back up the node's database while it runs (SQLite online backup; PostgreSQL: pg_dump). Key files are
        not included: back them up separately (docs/operations.md)."""
        from common import backup

        config = load_config(ctx.obj["env"])
        how = backup.backup(config.database, output)
        click.echo(f"backup written to {output} ({how}, {output.stat().st_size} bytes)")

    @db.command("restore")
    @click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="confirm: the database is replaced (stop the node first)")
    @click.pass_context
    def restore_cmd(ctx: click.Context, source: Path, yes: bool) -> None:
        """Replace the node's database with a backup (stop the node first). A provincial node restored from a
        backup older than what the national node accepted repairs itself on its next round and prints a
        recovery report (docs/operations.md)."""
        from common import backup

        if not yes:
            raise click.UsageError("restoring replaces the database: stop the node, then run again with --yes")
        config = load_config(ctx.obj["env"])
        how = backup.restore(config.database, source)
        click.echo(f"database restored from {source} ({how}); start the node, then run a sync round")

    @db.command("revision")
    @click.option("-m", "--message", required=True, help="what the migration does")
    @click.pass_context
    def revision(ctx: click.Context, message: str) -> None:
        """(developers) Autogenerate a migration from the models against a database at head."""
        from alembic import command as alembic_command

        from common import migrations

        _config, engine = _engine(ctx)
        if migrations.current_revision(engine) != migrations.head_revision(migrations_dir):
            raise click.ClickException("database is not at head; run `db upgrade` first")
        with engine.begin() as conn:
            cfg = migrations.alembic_config(migrations_dir, connection=conn)
            script = alembic_command.revision(cfg, message=message, autogenerate=True)
        click.echo(f"wrote {script.path if script and not isinstance(script, list) else script}; review it")

    return db


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr at TMIS_LOG_LEVEL with UTC timestamps and each line's request id; ``fmt`` json writes one
    JSON object per line (TMIS_LOG_FORMAT; servers only; library code just logs)."""
    import logging

    from common.metrics import configure_log_format

    logging.Formatter.converter = time.gmtime
    logging.basicConfig(level=level, format="%(asctime)sZ %(levelname)s %(name)s: %(message)s", force=True)
    configure_log_format(fmt)


GC_GEN0_THRESHOLD = 50_000


def tune_gc_for_batches() -> None:
    """Garbage-collector settings for the long-running processes that move batches (servers, sync rounds).

    A batch of a thousand records is tens of thousands of short-lived dicts and lists, freed by reference
    counting (JSON values hold no cycles). With CPython's default (a young collection every 700 net
    allocations, promoting survivors until a full collection scans the whole heap), collecting cost about a
    third of a sync round's CPU in a measured round (docs/performance.md). So: move what start-up built into the
    permanent generation (``gc.freeze``, as the Python documentation advises for servers) and collect the young
    generation every 50 000 net allocations; reference cycles are still collected, less often."""
    import gc

    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def serve_wsgi(
    app: Any, host: str, port: int, threads: int = 8, *, max_body: int | None = None, too_large_code: str = ""
) -> None:
    """Serve a Flask app with waitress (production WSGI server; never the Flask development server).

    ``max_body``: a request whose declared ``Content-Length`` reaches it is refused by the server before the
    body is read (a chunked body, once that much arrived) — 413 with the JSON error body and ``too_large_code``,
    like every other error of the node."""
    tune_gc_for_batches()
    click.echo(f"serving on http://{host}:{port}/ (waitress, {threads} threads); Ctrl-C stops", err=True)
    server = make_wsgi_server(app, host, port, threads, max_body=max_body, too_large_code=too_large_code)
    server.print_listen("Serving on http://{}:{}")  # as waitress.serve logs it
    server.run()


def serve_wsgi_workers(
    make_app: Callable[[], Any],
    host: str,
    port: int,
    workers: int,
    threads: int = 8,
    *,
    max_body: int | None = None,
    too_large_code: str = "",
    after_fork: Callable[[], None] | None = None,
    in_parent: Callable[[], Callable[[], None]] | None = None,
) -> None:
    """Serve with ``workers`` processes sharing one listening socket (pre-fork), each a waitress server with
        ``threads`` threads — CPU-bound work (batch verification) then runs on every core instead of under one GIL.

        The parent binds the socket, forks the workers and supervises them: a worker that dies is replaced (and
        logged); SIGTERM or SIGINT stops every worker and then the parent. Each worker builds its own app after the
        fork (``after_fork`` first, e.g. to drop database connections inherited from the parent), so no connection
        is shared between processes. ``in_parent`` runs in the parent once the workers are forked (background jobs
    that must run once, not once per worker — started after the fork so no worker inherits their thread); it returns
    the function that stops them. POSIX only (``os.fork``)."""
    import signal
    import socket

    sock = socket.create_server((host, port), backlog=1024, reuse_port=False)
    sock.set_inheritable(True)
    click.echo(
        f"serving on http://{host}:{port}/ (waitress, {workers} worker processes × {threads} threads); Ctrl-C stops",
        err=True,
    )
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False
    parent = os.getpid()

    def start(n: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
                threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
                if after_fork is not None:
                    after_fork()
                tune_gc_for_batches()
                server = make_wsgi_server(
                    make_app(), host, port, threads, max_body=max_body, too_large_code=too_large_code, sockets=[sock]
                )
                server.run()
            except BaseException as e:  # a worker reports and exits; the parent replaces it
                click.echo(f"worker {n} (pid {os.getpid()}) stopped: {e!r}", err=True)
                code = 1
            finally:
                os._exit(code)
        children[pid] = n

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for n in range(workers):
        start(n)
    stop_jobs = in_parent() if in_parent is not None else None
    click.echo(f"Serving on http://{host}:{port}", err=True)  # as waitress.serve logs it
    restarts: list[float] = []
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        n = children.pop(pid, None)
        if n is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        click.echo(f"worker {n} (pid {pid}) exited with status {code}; replacing it", err=True)
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 60] + [now]
        if len(restarts) > 5 * workers:  # crashing at start: do not fork forever
            click.echo("workers keep exiting (more than 5 per worker in a minute); stopping", err=True)
            stop()
            continue
        start(n)
    sock.close()
    if stop_jobs is not None:
        stop_jobs()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """In a worker of :func:`serve_wsgi_workers`: exit once the parent is gone. A parent killed outright (SIGKILL,
    the out-of-memory killer) cannot stop its workers, which would otherwise go on serving the port unsupervised,
    holding their database connections, until someone finds them (as gunicorn's workers do, by the parent's pid)."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(0)


def make_wsgi_server(
    app: Any,
    host: str,
    port: int,
    threads: int = 8,
    *,
    max_body: int | None = None,
    too_large_code: str = "",
    sockets: list[Any] | None = None,
) -> Any:
    """The waitress server :func:`serve_wsgi` runs (bound, not yet running); on ``sockets`` already bound
    (a pre-forked worker) instead of ``host``/``port``."""
    from waitress.server import create_server

    # ident "": no Server header (no product banner for a scanner to fingerprint)
    kw: dict[str, Any] = {"threads": threads, "ident": "", "clear_untrusted_proxy_headers": True}
    if max_body is not None:
        kw["max_request_body_size"] = max_body + 1  # waitress refuses a length >= its maximum
    server = create_server(app, sockets=sockets, **kw) if sockets else create_server(app, host=host, port=port, **kw)
    server.channel_class = _json_error_channel(too_large_code or "payload_too_large", max_body)
    return server


def _json_error_channel(code: str, limit: int | None) -> Any:
    """A waitress channel whose own error answers (body too large, bad request line) use the tmis JSON error
    contract instead of plain text."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask
    from waitress.utilities import RequestEntityTooLarge

    from common.errors import ErrorCode, error_body

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            e = self.request.error
            if isinstance(e, RequestEntityTooLarge):
                body = error_body(code, 413, f"request body above {limit} bytes", {"limit": limit})
            else:
                body = error_body(ErrorCode.BAD_REQUEST, int(e.code), e.reason, {})
            data = json.dumps(body, ensure_ascii=False).encode()
            self.status = f"{e.code} {e.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(data)
            self.write(data)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def main() -> None:
    try:
        tmis(obj={"env": dict(os.environ)})
    except TmisError as e:
        click.echo(f"error [{e.code}]: {e.message}", err=True)
        if e.details:
            click.echo(json.dumps(e.details, ensure_ascii=False, default=str), err=True)
        sys.exit(2)
