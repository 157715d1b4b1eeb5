"""sealed identities: province seal keys (stored wrapped), keyed identity indexes

The unkeyed SHA-256 identity keys of existing rows are dropped here (they can be tested against every ID number
offline); ``tmis national db upgrade`` then computes the keyed indexes with the node's seal key file
(``tmis national data-keys reindex`` does it on its own).

Revision ID: 0008_sealed_identity
Revises: 0007_routed_messages
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

import common.db

revision = '0008_sealed_identity'
down_revision = '0007_routed_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'province_seal_key',
        sa.Column('kid', sa.String(length=40), nullable=False),
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('recipient', sa.String(length=40), nullable=False),
        sa.Column('enc', sa.String(length=64), nullable=False),
        sa.Column('wrapped', sa.String(length=128), nullable=False),
        sa.Column('registered_at', common.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['province_code'], ['province.code'], name=op.f('fk_province_seal_key_province_code_province')),
        sa.PrimaryKeyConstraint('kid', name=op.f('pk_province_seal_key')),
    )
    with op.batch_alter_table('province_seal_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_province_seal_key_province_code'), ['province_code'], unique=False)
    with op.batch_alter_table('teacher_core', schema=None) as batch_op:
        batch_op.alter_column('identity_key', existing_type=sa.String(length=64), type_=sa.String(length=68))
    with op.batch_alter_table('duplicate_identity', schema=None) as batch_op:
        batch_op.alter_column('identity_key', existing_type=sa.String(length=64), type_=sa.String(length=68))
    op.execute("UPDATE teacher_core SET identity_key = NULL WHERE identity_key NOT LIKE 'bi1:%'")
    op.execute("UPDATE duplicate_identity SET identity_key = '' WHERE identity_key NOT LIKE 'bi1:%'")


def downgrade() -> None:
    op.execute("UPDATE teacher_core SET identity_key = NULL")
    op.execute("UPDATE duplicate_identity SET identity_key = ''")
    with op.batch_alter_table('duplicate_identity', schema=None) as batch_op:
        batch_op.alter_column('identity_key', existing_type=sa.String(length=68), type_=sa.String(length=64))
    with op.batch_alter_table('teacher_core', schema=None) as batch_op:
        batch_op.alter_column('identity_key', existing_type=sa.String(length=68), type_=sa.String(length=64))
    with op.batch_alter_table('province_seal_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_province_seal_key_province_code'))
    op.drop_table('province_seal_key')
