"""五级应用: the unit tree (单位), accounts (账号), roles, tokens, lock-out, node provisioning."""
