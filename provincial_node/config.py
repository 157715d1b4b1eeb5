"""Configuration of a provincial node, from the environment (the rules and shared variables are in
:mod:`common.config`; nothing else reads ``os.environ``).

==============================  ==========================================================  ================
variable                        meaning                                                     default
==============================  ==========================================================  ================
TMIS_PROVINCE_CODE              2-digit province code (required to serve and sync)           —
TMIS_NATIONAL_URL               base URL of the national node                                —
TMIS_SYNC_SCHEDULE_MINUTES      sync round period; 0 disables the scheduled round            15
TMIS_SYNC_BATCH_SIZE            records per batch                                            1000
TMIS_SYNC_PUSH_WINDOW           batch requests in flight during a push (1–8)                 2
TMIS_TRANSFER_EXPIRY_DAYS       days a transfer or rotation request stays open               60
TMIS_WEB_IDLE_MINUTES           a page session ends after this long without a request         30
TMIS_WEB_SESSION_HOURS          a page session ends this long after login, whatever happens   12
TMIS_WEB_SECURE_COOKIES         page cookies only over HTTPS (set true behind a TLS proxy)    false
TMIS_WEB_SECRET_KEY_PATH        the key that signs the pages' CSRF tokens (0600; made once)  <data dir>/web.key
TMIS_IMPORT_MAX_BYTES           largest import file accepted (bytes)                         16 MiB
TMIS_IMPORT_MAX_ROWS            most data rows in one import file                            50000
TMIS_IMPORT_CHUNK_ROWS          rows an import task commits at a time                        200
TMIS_TASK_WORKERS               background tasks run at once by ``serve`` (0: none)          2
==============================  ==========================================================  ================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import EnvReader, NodeConfig, node_values, validate_province_code


@dataclass(frozen=True)
class ProvincialConfig(NodeConfig):
    province_code: str = ""
    national_url: str | None = None
    sync_schedule_minutes: int = 15
    sync_batch_size: int = 1000
    sync_push_window: int = 2
    transfer_expiry_days: int = 60
    web_idle_minutes: int = 30
    web_session_hours: int = 12
    web_secure_cookies: bool = False
    web_secret_key_path: Path | None = None
    import_max_bytes: int = 16 * 1024 * 1024
    import_max_rows: int = 50_000
    import_chunk_rows: int = 200
    task_workers: int = 2


def config_from_env(env: Mapping[str, str], **overrides: object) -> ProvincialConfig:
    r = EnvReader(env)
    values = node_values(env, "province", 8100)
    raw_code = r.str("TMIS_PROVINCE_CODE")
    values["province_code"] = validate_province_code("TMIS_PROVINCE_CODE", raw_code) if raw_code else ""
    values["national_url"] = r.str("TMIS_NATIONAL_URL")
    values["sync_schedule_minutes"] = r.int("TMIS_SYNC_SCHEDULE_MINUTES", 15, minimum=0, maximum=24 * 60)
    values["sync_batch_size"] = r.int("TMIS_SYNC_BATCH_SIZE", 1000, minimum=1, maximum=10_000)
    values["sync_push_window"] = r.int("TMIS_SYNC_PUSH_WINDOW", 2, minimum=1, maximum=8)
    values["transfer_expiry_days"] = r.int("TMIS_TRANSFER_EXPIRY_DAYS", 60, minimum=1, maximum=366)
    values["web_idle_minutes"] = r.int("TMIS_WEB_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60)
    values["web_session_hours"] = r.int("TMIS_WEB_SESSION_HOURS", 12, minimum=1, maximum=7 * 24)
    values["web_secure_cookies"] = r.bool("TMIS_WEB_SECURE_COOKIES", False)
    values["web_secret_key_path"] = Path(
        r.str("TMIS_WEB_SECRET_KEY_PATH", str(values["data_dir"] / "web.key")) or values["data_dir"] / "web.key"
    )
    values["import_max_bytes"] = r.int(
        "TMIS_IMPORT_MAX_BYTES", 16 * 1024 * 1024, minimum=1024, maximum=60 * 1024 * 1024
    )
    values["import_max_rows"] = r.int("TMIS_IMPORT_MAX_ROWS", 50_000, minimum=1, maximum=1_000_000)
    values["import_chunk_rows"] = r.int("TMIS_IMPORT_CHUNK_ROWS", 200, minimum=1, maximum=10_000)
    values["task_workers"] = r.int("TMIS_TASK_WORKERS", 2, minimum=0, maximum=16)
    values.update(overrides)
    return ProvincialConfig(**values)
