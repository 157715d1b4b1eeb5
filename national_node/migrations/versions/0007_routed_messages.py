"""routed messages: what is routed to a province waits here until the province's own lock sequences and signs it

Revision ID: 0007_routed_messages
Revises: 0006_reconciliation
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

import common.db

revision = '0007_routed_messages'
down_revision = '0006_reconciliation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'routed_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('created_at', common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['province_code'], ['province.code'], name=op.f('fk_routed_message_province_code_province')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_routed_message')),
    )
    with op.batch_alter_table('routed_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routed_message_province_code'), ['province_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routed_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routed_message_province_code'))
    op.drop_table('routed_message')
