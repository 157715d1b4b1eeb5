"""Provincial node (省级节点) of tmis: the teacher files of one province, its five-level accounts, the review
chain, business modules and the outbox that feeds the sync protocol. Never imports ``national_node``."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
