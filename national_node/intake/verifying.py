"""Batch verification in worker processes (issue 18, docs/performance.md).

:func:`sync_protocol.batch.verify_batch` is pure CPU work in Python: in the server's own process it holds the
interpreter lock, so batches of different provinces, and a province's batch n + 1 while batch n is applied,
would verify one after the other. With ``TMIS_VERIFY_WORKERS`` > 0 each request hands the batch file and the
trust version to a pool of worker processes, which run the **whole** ``verify_batch`` on those very bytes
(signature, header, every record, Merkle root); the request thread meanwhile is free, and so is the lock for
the thread applying the previous batch. The worker answers with the verified header, batch hash and signers;
the request thread then decodes the accepted lines (:func:`sync_protocol.records.records_of_verified_lines`,
about a fifth of the cost of verifying them) instead of shipping a thousand records back between processes.

A batch the worker refuses is verified again in the request's own process, which raises the very error (with
its record index and reason) that answers the province: refusals are rare and must name what failed.

The pool is started lazily by the first batch in each process (so a server that forks its workers gets one per
process) and stopped by :func:`stop`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

from sync_protocol.batch import DEFAULT_LIMITS, Limits, VerifiedBatch, split_batch_file, verify_batch
from sync_protocol.errors import ProtocolError
from sync_protocol.records import records_of_verified_lines
from sync_protocol.trust import TrustMetadata, load_pinned_trust

_lock = threading.Lock()
_workers = 0
_pool: ProcessPoolExecutor | None = None
_pool_pid = 0


def configure(workers: int) -> None:
    """How many worker processes verify batches (0: in the request's own process)."""
    global _workers
    stop()
    _workers = max(0, workers)


def stop() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None and _pool_pid == os.getpid():
        pool.shutdown(wait=True, cancel_futures=True)


def _get_pool() -> ProcessPoolExecutor | None:
    global _pool, _pool_pid
    if _workers == 0:
        return None
    with _lock:
        if _pool is None or _pool_pid != os.getpid():  # none yet, or inherited through a fork: not ours to use
            _pool = ProcessPoolExecutor(
                _workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
            )
            _pool_pid = os.getpid()
            atexit.register(stop)
        return _pool


def verify(data: bytes, trust: TrustMetadata, province: str, limits: Limits = DEFAULT_LIMITS) -> VerifiedBatch:
    """:func:`verify_batch`, in a worker process when configured; the same result and the same errors."""
    pool = _get_pool()
    if pool is None:
        return verify_batch(data, trust, province, limits)
    outcome = pool.submit(_verify_in_worker, data, trust.envelope, province, limits).result()
    if outcome is None:  # refused: verify here, to raise the exact error
        return verify_batch(data, trust, province, limits)
    header, batch_hash, signers = outcome
    env_line, lines = split_batch_file(data, limits)
    return VerifiedBatch(header, batch_hash, env_line, tuple(records_of_verified_lines(lines)), tuple(lines), signers)


def _init_worker() -> None:
    from common.cli import tune_gc_for_batches

    tune_gc_for_batches()


@lru_cache(maxsize=8)
def _trust(envelope: bytes) -> TrustMetadata:
    return load_pinned_trust(envelope)


def _verify_in_worker(data: bytes, trust_envelope: bytes, province: str, limits: Limits) -> tuple | None:
    try:
        verified = verify_batch(data, _trust(trust_envelope), province, limits)
    except ProtocolError:
        return None
    return verified.header, verified.batch_hash, verified.signer_keyids
