"""built batch files compressed with lz4 on PostgreSQL

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op

from common.db import set_toast_compression

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_toast_compression(op.get_bind(), 'sync_batch', ['data'], 'lz4')


def downgrade() -> None:
    set_toast_compression(op.get_bind(), 'sync_batch', ['data'], 'default')
