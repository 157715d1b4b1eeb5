"""sealed identities: the province seal keys (stored encrypted under the data key)

Revision ID: 0015_sealed_identity
Revises: 0014_page_indexes
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa
import common.db
import common.protection

revision = '0015_sealed_identity'
down_revision = '0014_page_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seal_key',
        sa.Column('kid', sa.String(length=40), nullable=False),
        sa.Column('key', common.protection.ProtectedString(length=200), nullable=False),
        sa.Column('recipient', sa.String(length=40), nullable=False),
        sa.Column('wrapped', sa.JSON(), nullable=False),
        sa.Column('created_at', common.db.UTCDateTime(), nullable=False),
        sa.Column('registered_at', common.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('kid', name=op.f('pk_seal_key')),
    )


def downgrade() -> None:
    op.drop_table('seal_key')
