"""teacher_core_history.fields nullable: history rows point into the stored batch

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('teacher_core_history', schema=None) as batch_op:
        batch_op.alter_column('fields', existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    pointing = op.get_bind().execute(
        sa.text("SELECT count(*) FROM teacher_core_history WHERE fields IS NULL")).scalar()
    if pointing:
        raise RuntimeError(f"{pointing} history rows point into stored batches and hold no fields of their own; "
                           "a node at 0004 cannot go back to 0003 without losing them")
    with op.batch_alter_table('teacher_core_history', schema=None) as batch_op:
        batch_op.alter_column('fields', existing_type=sa.JSON(), nullable=False)
