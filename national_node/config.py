"""Configuration of the national node, from the environment (the rules and shared variables are in
:mod:`common.config`; nothing else reads ``os.environ``).

==============================  ==========================================================  ================
variable                        meaning                                                     default
==============================  ==========================================================  ================
TMIS_LOG_ORIGIN                 the acceptance log's origin (name in every checkpoint)       tmis.moe.edu.cn/…
TMIS_MAX_BATCH_BYTES            largest batch accepted                                       64 MiB
==============================  ==========================================================  ================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from common.config import EnvReader, NodeConfig, node_values
from common.errors import ConfigError


@dataclass(frozen=True)
class NationalConfig(NodeConfig):
    log_origin: str = "tmis.moe.edu.cn/acceptance-log/v1"
    max_batch_bytes: int = 64 * 1024 * 1024


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
    values.update(overrides)
    return NationalConfig(**values)
