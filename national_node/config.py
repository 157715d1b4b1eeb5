"""Configuration of the national node, from the environment (the rules and shared variables are in
:mod:`common.config`; nothing else reads ``os.environ``).

==============================  ==========================================================  ================
variable                        meaning                                                     default
==============================  ==========================================================  ================
TMIS_LOG_ORIGIN                 the acceptance log's origin (name in every checkpoint)       tmis.moe.edu.cn/…
TMIS_MAX_BATCH_BYTES            largest batch accepted                                       64 MiB
TMIS_VERIFY_WORKERS             processes verifying batches for ``serve`` (0: in-process)    cores − 2, ≤ 4
==============================  ==========================================================  ================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from common.config import EnvReader, NodeConfig, node_values
from common.errors import ConfigError


@dataclass(frozen=True)
class NationalConfig(NodeConfig):
    log_origin: str = "tmis.moe.edu.cn/acceptance-log/v1"
    max_batch_bytes: int = 64 * 1024 * 1024
    verify_workers: int = 0  # `serve` only (in-process apps verify in-process)


def default_verify_workers(cpus: int | None = None) -> int:
    """Worker processes for batch verification when TMIS_VERIFY_WORKERS is not set: the cores left after the
    server's own process and PostgreSQL, at most 4 — none on two cores, where the benchmark measured the pool
    slower than verifying in-process (the workers only compete with the server and the database for the same two
    cores; docs/performance.md)."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(0, min(4, cpus - 2))


def config_from_env(env: Mapping[str, str], **overrides: object) -> NationalConfig:
    r = EnvReader(env)
    values = node_values(env, "national", 8000)
    origin = r.str("TMIS_LOG_ORIGIN", "tmis.moe.edu.cn/acceptance-log/v1") or ""
    if not re.fullmatch(r"[\x21-\x7e]{1,200}", origin):
        raise ConfigError(
            "TMIS_LOG_ORIGIN must be 1–200 printable ASCII characters without spaces",
            details={"variable": "TMIS_LOG_ORIGIN", "value": origin, "reason": "not a log origin"},
        )
    values["log_origin"] = origin
    values["max_batch_bytes"] = r.int(
        "TMIS_MAX_BATCH_BYTES", 64 * 1024 * 1024, minimum=1024, maximum=1024 * 1024 * 1024
    )
    values["verify_workers"] = r.int("TMIS_VERIFY_WORKERS", default_verify_workers(), minimum=0, maximum=64)
    values.update(overrides)
    return NationalConfig(**values)
