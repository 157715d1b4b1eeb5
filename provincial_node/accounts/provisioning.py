"""Node provisioning (``tmis province init``): the province's own unit, its first system administrator, the
node settings and the node's Ed25519 signing key (file mode 0600). Everything is checked before anything is
written; the key file is written last, so a failure leaves neither rows nor a key behind."""

from __future__ import annotations

from dataclasses import dataclass

from common.db import redact_url, session_scope
from common.divisions import lookup
from common.errors import ConfigError
from common.keyfile import write_private_key
from common.protection import DataKeys
from provincial_node.accounts import accounts, passwords, second_factor, units
from provincial_node.audit_trail import trail
from provincial_node.context import ProvinceRuntime, Role, UnitLevel
from provincial_node.db import NodeSetting
from sync_protocol.keys import Signer


@dataclass(frozen=True)
class Provisioned:
    province_code: str
    unit_name: str
    key_id: str


def check_admin(username: str, password: str) -> None:
    """The first administrator's username and password, checked before the database is touched."""
    passwords.check_password_strength(password, username)
    accounts.check_username(username)


def provision(
    runtime: ProvinceRuntime,
    *,
    admin_username: str,
    admin_name: str,
    admin_password: str,
    unit_name: str | None,
    data_keys: DataKeys | None = None,
    second_factor_roles: tuple[str, ...] = (Role.SYSADMIN, Role.INFOADMIN),
) -> Provisioned:
    """Initialise a migrated, empty database for the runtime's province (and write ``data_keys``, the keys the
    runtime's engine carries, to the data key file, beside the signing key, last)."""
    config = runtime.config
    code = config.province_code
    check_admin(admin_username, admin_password)
    with runtime.session_factory() as s:
        if s.get(NodeSetting, "province_code") is not None:
            raise ConfigError(
                "this database already holds an initialised node",
                details={
                    "variable": "TMIS_DATABASE_URL",
                    "value": redact_url(config.database.url),
                    "reason": "initialised",
                },
            )
    if config.signing_key_path.exists():
        raise ConfigError(
            f"key file {config.signing_key_path} already exists; refusing to overwrite it",
            details={"variable": "TMIS_SIGNING_KEY_PATH", "value": str(config.signing_key_path), "reason": "exists"},
        )
    if data_keys is not None and config.data_key_file.exists():
        raise ConfigError(
            f"data key file {config.data_key_file} already exists; refusing to overwrite it",
            details={"variable": "TMIS_DATA_KEY_PATH", "value": str(config.data_key_file), "reason": "exists"},
        )
    division = lookup(code + "0000")
    name = unit_name or f"{division.name if division else code}教育厅"
    signer = Signer.generate()
    with session_scope(runtime.session_factory) as s:
        ctx = runtime.context(s)
        unit = units.create_unit(ctx, {"code": code + "0000", "name": name, "level": UnitLevel.PROVINCE})
        accounts.create_account(
            ctx, username=admin_username, real_name=admin_name, unit=unit, role=Role.SYSADMIN, password=admin_password
        )
        for key, value in (
            ("province_code", code),
            ("signing_key_id", signer.keyid),
            ("signing_key_path", str(config.signing_key_path)),
            ("catalogue_version", runtime.catalogue.version),
            # which roles sign in with a security key (default: the administrators); later changed by the
            # province's administrator or `tmis province second-factor roles --set`
            (second_factor.ROLES_SETTING, ",".join(second_factor_roles)),
        ):
            s.add(NodeSetting(key=key, value=value))
        trail.record(ctx, "node.init", "node", code, unit.path, admin=admin_username, key_id=signer.keyid)
        write_private_key(config.signing_key_path, signer.to_pem())  # last: a failure above rolls back cleanly
        if data_keys is not None:
            data_keys.save(config.data_key_file)
    return Provisioned(code, name, signer.keyid)
