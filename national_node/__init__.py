"""National node (国家级节点) of tmis: verifies and applies the provinces' signed batches, keeps the
acceptance log, finds cross-province duplicates and brokers transfers. Never imports ``provincial_node``."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
