"""sync state for reliability: round notes, re-sent parked records, the core view's digest leaves and buckets,
the recovery report of a restored node

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
import sqlalchemy as sa

import common.db
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sync_round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notes', sa.JSON(), nullable=True))
    with op.batch_alter_table('parked_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resent_version', sa.Integer(), nullable=True))
    op.create_table(
        'core_leaf',
        sa.Column('teacher_number', sa.String(length=13), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('record_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('teacher_number', name=op.f('pk_core_leaf')),
    )
    with op.batch_alter_table('core_leaf', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_leaf_bucket'), ['bucket'], unique=False)
    op.create_table(
        'digest_bucket',
        sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('bucket', name=op.f('pk_digest_bucket')),
    )
    op.create_table(
        'recovery_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('detected_at', common.db.UTCDateTime(), nullable=False),
        sa.Column('teacher_number', sa.String(length=13), nullable=False),
        sa.Column('national_version', sa.Integer(), nullable=False),
        sa.Column('local_version', sa.Integer(), nullable=True),
        sa.Column('batch_seq', sa.Integer(), nullable=False),
        sa.Column('resolved_at', common.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_entry')),
    )
    with op.batch_alter_table('recovery_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_entry_teacher_number'), ['teacher_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recovery_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_entry_teacher_number'))
    op.drop_table('recovery_entry')
    op.drop_table('digest_bucket')
    with op.batch_alter_table('core_leaf', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_leaf_bucket'))
    op.drop_table('core_leaf')
    with op.batch_alter_table('parked_record', schema=None) as batch_op:
        batch_op.drop_column('resent_version')
    with op.batch_alter_table('sync_round', schema=None) as batch_op:
        batch_op.drop_column('notes')
