"""reconciliation: the digest tree of each province's core view and the comparisons provinces asked for

Revision ID: 0006_reconciliation
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

import common.db

revision = '0006_reconciliation'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'core_leaf',
        sa.Column('teacher_number', sa.String(length=13), nullable=False),
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('record_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('teacher_number', name=op.f('pk_core_leaf')),
    )
    with op.batch_alter_table('core_leaf', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_leaf_province_code'), ['province_code'], unique=False)
    op.create_table(
        'digest_bucket',
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('province_code', 'bucket', name=op.f('pk_digest_bucket')),
    )
    op.create_table(
        'reconciliation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('checked_at', common.db.UTCDateTime(), nullable=False),
        sa.Column('province_root', sa.String(length=64), nullable=False),
        sa.Column('national_root', sa.String(length=64), nullable=False),
        sa.Column('matched', sa.Boolean(), nullable=False),
        sa.Column('province_leaves', sa.Integer(), nullable=False),
        sa.Column('national_leaves', sa.Integer(), nullable=False),
        sa.Column('differing', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation')),
    )
    with op.batch_alter_table('reconciliation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_province_code'), ['province_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reconciliation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_province_code'))
    op.drop_table('reconciliation')
    op.drop_table('digest_bucket')
    with op.batch_alter_table('core_leaf', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_leaf_province_code'))
    op.drop_table('core_leaf')
