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
TMIS_WEB_SECURE_COOKIES         page cookies only over HTTPS (also on with TMIS_PROXY_HOPS)   false
TMIS_WEB_SECRET_KEY_PATH        the key that signs the pages' CSRF tokens (0600; made once)  <data dir>/web.key
TMIS_IMPORT_MAX_BYTES           largest import file accepted (bytes)                         16 MiB
TMIS_IMPORT_MAX_ROWS            most data rows in one import file                            50000
TMIS_IMPORT_CHUNK_ROWS          rows an import task commits at a time                        200
TMIS_TASK_WORKERS               background tasks run at once by ``serve`` (0: none)          2
TMIS_DATA_KEY_PATH              the node data key (ID numbers at rest; JSON, mode 0600)       <data dir>/data.key
TMIS_TOKEN_LIFETIME_MINUTES     absolute lifetime of an API token (and of a web session)     480
TMIS_TOKEN_IDLE_MINUTES         an API token (web session) unused this long expires           30
TMIS_PASSWORD_MAX_AGE_DAYS      a password older than this must be changed (0: never)        90
TMIS_LOGIN_MAX_FAILURES         failed logins of one username before it is locked            5
TMIS_LOGIN_LOCK_MINUTES         how long such a lock lasts                                   15
TMIS_LOGIN_MAX_PER_ADDRESS      failed logins from one address per 15 minutes before         20
                                every login from it is refused for a while
TMIS_READ_ALERT_PER_HOUR        whole-file reads by one account in an hour before the        100
                                unit above is alerted
TMIS_SHARING_REVIEW_DAYS        working days the owning level has to answer a data-sharing    5
                                application (信息共享)
TMIS_STEP_UP_MINUTES            a security-key check counts as fresh for exports, approvals    10
                                of change requests and account changes this long
TMIS_WEBAUTHN_RP_ID             the host name users type to reach the node (the security       localhost
                                keys are bound to it; not an IP address)
TMIS_WEBAUTHN_ORIGINS           the pages' origins, comma-separated                          http://<rp id>:<port>
TMIS_PROXY_HOPS                 reverse proxies in front of the node whose X-Forwarded-*      0
                                headers are trusted (TLS termination; docs/security.md)
==============================  ==========================================================  ================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import EnvReader, NodeConfig, node_values, validate_province_code
from common.errors import ConfigError


@dataclass(frozen=True)
class ProvincialConfig(NodeConfig):
    province_code: str = ""
    national_url: str | None = None
    sync_schedule_minutes: int = 15
    sync_batch_size: int = 1000
    sync_push_window: int = 2
    transfer_expiry_days: int = 60
    web_secure_cookies: bool = False
    web_secret_key_path: Path | None = None
    import_max_bytes: int = 16 * 1024 * 1024
    import_max_rows: int = 50_000
    import_chunk_rows: int = 200
    task_workers: int = 2
    data_key_path: Path | None = None
    token_lifetime_minutes: int = 480
    token_idle_minutes: int = 30
    password_max_age_days: int = 90
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    login_max_per_address: int = 20
    read_alert_per_hour: int = 100
    sharing_review_days: int = 5
    proxy_hops: int = 0
    step_up_minutes: int = 10
    webauthn_rp_id: str = "localhost"
    webauthn_origins: tuple[str, ...] = ()

    @property
    def data_key_file(self) -> Path:
        return self.data_key_path or self.data_dir / "data.key"


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
    key_path = r.str("TMIS_DATA_KEY_PATH")
    values["data_key_path"] = Path(key_path) if key_path else None
    values["token_lifetime_minutes"] = r.int("TMIS_TOKEN_LIFETIME_MINUTES", 480, minimum=5, maximum=24 * 60)
    values["token_idle_minutes"] = r.int("TMIS_TOKEN_IDLE_MINUTES", 30, minimum=1, maximum=24 * 60)
    values["password_max_age_days"] = r.int("TMIS_PASSWORD_MAX_AGE_DAYS", 90, minimum=0, maximum=3650)
    values["login_max_failures"] = r.int("TMIS_LOGIN_MAX_FAILURES", 5, minimum=3, maximum=20)
    values["login_lock_minutes"] = r.int("TMIS_LOGIN_LOCK_MINUTES", 15, minimum=1, maximum=24 * 60)
    values["login_max_per_address"] = r.int("TMIS_LOGIN_MAX_PER_ADDRESS", 20, minimum=5, maximum=10_000)
    values["read_alert_per_hour"] = r.int("TMIS_READ_ALERT_PER_HOUR", 100, minimum=1, maximum=1_000_000)
    values["sharing_review_days"] = r.int("TMIS_SHARING_REVIEW_DAYS", 5, minimum=1, maximum=60)
    values["proxy_hops"] = r.int("TMIS_PROXY_HOPS", 0, minimum=0, maximum=5)
    values["step_up_minutes"] = r.int("TMIS_STEP_UP_MINUTES", 10, minimum=1, maximum=120)
    rp_id = (r.str("TMIS_WEBAUTHN_RP_ID", "localhost") or "localhost").strip().lower()
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", rp_id) or re.fullmatch(r"[0-9.]+", rp_id):
        raise ConfigError(
            "TMIS_WEBAUTHN_RP_ID must be a host name (security keys are not bound to IP addresses)",
            details={"variable": "TMIS_WEBAUTHN_RP_ID", "value": rp_id, "reason": "not a host name"},
        )
    values["webauthn_rp_id"] = rp_id
    origins = tuple(o.strip().rstrip("/") for o in (r.str("TMIS_WEBAUTHN_ORIGINS") or "").split(",") if o.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigError(
                "TMIS_WEBAUTHN_ORIGINS: each origin is scheme://host[:port]",
                details={"variable": "TMIS_WEBAUTHN_ORIGINS", "value": origin, "reason": "not an origin"},
            )
    values["webauthn_origins"] = origins or (f"http://{rp_id}:{values['bind_port']}", f"https://{rp_id}")
    values.update(overrides)
    return ProvincialConfig(**values)
