"""Configuration from the environment: typed, and every bad value names its variable."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from national_node.config import config_from_env as national_config_from_env
from provincial_node.config import config_from_env as provincial_config_from_env


def test_defaults(tmp_path):
    cfg = provincial_config_from_env({"TMIS_DATA_DIR": str(tmp_path), "TMIS_PROVINCE_CODE": "44"})
    assert cfg.province_code == "44"
    assert cfg.database.url == f"sqlite:///{tmp_path / 'province.sqlite'}"
    assert (cfg.bind_host, cfg.bind_port) == ("127.0.0.1", 8100)
    assert cfg.sync_schedule_minutes == 15
    assert (cfg.sync_batch_size, cfg.sync_push_window) == (1000, 2)
    nat = national_config_from_env({"TMIS_DATA_DIR": str(tmp_path)})
    assert nat.bind_port == 8000 and nat.signing_key_path == tmp_path / "node.key"


def test_postgres_url_gets_the_psycopg_driver():
    cfg = national_config_from_env({"TMIS_DATABASE_URL": "postgresql://root@127.0.0.1/tmis"})
    assert cfg.database.url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    [
        ({"TMIS_PROVINCE_CODE": "99"}, "TMIS_PROVINCE_CODE", "unknown province code"),
        ({"TMIS_PROVINCE_CODE": "../44"}, "TMIS_PROVINCE_CODE", "unknown province code"),
        ({"TMIS_BIND": "localhost:99999"}, "TMIS_BIND", "not host:port"),
        ({"TMIS_BIND": "nonsense"}, "TMIS_BIND", "not host:port"),
        ({"TMIS_SYNC_SCHEDULE_MINUTES": "often"}, "TMIS_SYNC_SCHEDULE_MINUTES", "not an integer"),
        ({"TMIS_SYNC_SCHEDULE_MINUTES": "-5"}, "TMIS_SYNC_SCHEDULE_MINUTES", "out of range"),
        ({"TMIS_DATABASE_URL": "mysql://x/y"}, "TMIS_DATABASE_URL", "unsupported database scheme"),
        ({"TMIS_SQL_ECHO": "maybe"}, "TMIS_SQL_ECHO", "not a boolean"),
        ({"TMIS_LOG_LEVEL": "LOUD"}, "TMIS_LOG_LEVEL", "unknown level"),
        ({"TMIS_SYNC_PUSH_WINDOW": "0"}, "TMIS_SYNC_PUSH_WINDOW", "out of range"),
        ({"TMIS_SYNC_PUSH_WINDOW": "9"}, "TMIS_SYNC_PUSH_WINDOW", "out of range"),
    ],
)
def test_bad_values_name_the_variable(env, variable, reason):
    with pytest.raises(ConfigError) as exc:
        provincial_config_from_env(env)
    assert exc.value.details["variable"] == variable
    assert exc.value.details["reason"] == reason
    assert variable in exc.value.message


def test_password_never_reported():
    with pytest.raises(ConfigError) as exc:
        national_config_from_env({"TMIS_DATABASE_URL": "mysql://user:secret@host/db"})
    assert "secret" not in str(exc.value.details)
