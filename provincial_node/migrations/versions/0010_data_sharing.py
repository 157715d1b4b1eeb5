"""data-sharing applications (信息共享) and the exports made under a grant

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from common.db import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sharing_application',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('applicant_unit_id', sa.Integer(), nullable=False),
        sa.Column('applied_by', sa.Integer(), nullable=False),
        sa.Column('applied_at', UTCDateTime(), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('scenario', sa.Text(), nullable=False),
        sa.Column('units', sa.JSON(), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('share_class', sa.String(length=16), nullable=False),
        sa.Column('period_from', sa.Date(), nullable=False),
        sa.Column('period_to', sa.Date(), nullable=False),
        sa.Column('reviewer_unit_id', sa.Integer(), nullable=False),
        sa.Column('due_at', UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['applicant_unit_id'], ['unit.id'], name=op.f('fk_sharing_application_applicant_unit_id_unit')),
        sa.ForeignKeyConstraint(['applied_by'], ['account.id'], name=op.f('fk_sharing_application_applied_by_account')),
        sa.ForeignKeyConstraint(['decided_by'], ['account.id'], name=op.f('fk_sharing_application_decided_by_account')),
        sa.ForeignKeyConstraint(['reviewer_unit_id'], ['unit.id'], name=op.f('fk_sharing_application_reviewer_unit_id_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sharing_application')),
    )
    with op.batch_alter_table('sharing_application', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sharing_application_applicant_unit_id'), ['applicant_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sharing_application_reviewer_unit_id'), ['reviewer_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sharing_application_status'), ['status'], unique=False)
    op.create_table(
        'sharing_export',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('exported_by', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('teachers', sa.Integer(), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('format', sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['sharing_application.id'], name=op.f('fk_sharing_export_application_id_sharing_application')),
        sa.ForeignKeyConstraint(['exported_by'], ['account.id'], name=op.f('fk_sharing_export_exported_by_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sharing_export')),
    )
    with op.batch_alter_table('sharing_export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sharing_export_application_id'), ['application_id'], unique=False)


def downgrade() -> None:
    op.drop_table('sharing_export')
    op.drop_table('sharing_application')
