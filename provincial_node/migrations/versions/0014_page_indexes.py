"""page indexes: a unit's teacher files by state (the review queues count them from the index alone)

Replaces ix_teacher_unit_id, a prefix of the new index. scripts/bench's pages figure (docs/performance.md,
"Pages at N = 200 000"): the county review queue's grouped count read every file row of the county's schools.

Revision ID: 0014_page_indexes
Revises: 0013
Create Date: 2026-12-06 18:40:00.000000
"""
from alembic import op

revision = '0014_page_indexes'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.create_index('ix_teacher_unit_id_status', ['unit_id', 'status'], unique=False)
        batch_op.drop_index('ix_teacher_unit_id')


def downgrade() -> None:
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.create_index('ix_teacher_unit_id', ['unit_id'], unique=False)
        batch_op.drop_index('ix_teacher_unit_id_status')
