"""stored batch files (and offered evidence) compressed with lz4 on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from alembic import op

from common.db import set_toast_compression

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_toast_compression(op.get_bind(), 'batch', ['data'], 'lz4')
    set_toast_compression(op.get_bind(), 'evidence', ['offered_data'], 'lz4')


def downgrade() -> None:
    set_toast_compression(op.get_bind(), 'batch', ['data'], 'default')
    set_toast_compression(op.get_bind(), 'evidence', ['offered_data'], 'default')
