"""security: real-name accounts, session generations, password history, login log, the hash-chained
append-only audit trail, and room for encrypted ID numbers with blind indexes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Existing ID numbers stay readable in clear after this migration; ``tmis province data-keys reencrypt`` (after
``tmis province data-keys init``) encrypts them and fills the blind indexes, and ``serve`` refuses to start until it
has (docs/security.md, "Upgrading an existing node").
"""
import sqlalchemy as sa
from alembic import op

from common.db import UTCDateTime
from provincial_node.audit_trail.chain import GENESIS, event_hash

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_event", "login_event")


def _append_only(bind) -> None:
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tmis_append_only()"
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.alter_column('id_number', existing_type=sa.String(length=30), type_=sa.String(length=200))
        batch_op.add_column(sa.Column('id_index', sa.String(length=68), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_account_id_index'), ['id_index'], unique=False)
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.alter_column('session_generation', server_default=None)

    op.create_table(
        'password_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_password_history_account_id_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_history')),
    )
    with op.batch_alter_table('password_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_history_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('generation', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.alter_column('generation', server_default=None)

    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.alter_column('doc_number', existing_type=sa.String(length=30), type_=sa.String(length=200))
        batch_op.add_column(sa.Column('doc_index', sa.String(length=68), nullable=True))
        batch_op.drop_constraint('uq_teacher_doc_type_doc_number', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_teacher_doc_type_doc_index'), ['doc_type', 'doc_index'])

    with op.batch_alter_table('teacher_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entered_by', sa.JSON(), nullable=True))

    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.alter_column('doc_number', existing_type=sa.String(length=30), type_=sa.String(length=200))

    # the audit chain: columns, then the existing events chained in id order, then NOT NULL and the head
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    events = sa.table(
        'audit_event',
        sa.column('id', sa.Integer()),
        sa.column('seq', sa.Integer()),
        sa.column('at', UTCDateTime()),
        sa.column('actor_id', sa.Integer()),
        sa.column('action', sa.String()),
        sa.column('target_type', sa.String()),
        sa.column('target_id', sa.String()),
        sa.column('unit_path', sa.String()),
        sa.column('reason', sa.Text()),
        sa.column('details', sa.JSON()),
        sa.column('prev_hash', sa.String()),
        sa.column('hash', sa.String()),
    )
    prev, seq = GENESIS, 0
    for row in bind.execute(sa.select(events).order_by(events.c.id)).mappings().all():
        seq += 1
        h = event_hash(
            prev,
            seq=seq,
            at=row['at'],
            actor_id=row['actor_id'],
            action=row['action'],
            target_type=row['target_type'],
            target_id=row['target_id'],
            unit_path=row['unit_path'],
            reason=row['reason'],
            details=row['details'],
        )
        bind.execute(sa.update(events).where(events.c.id == row['id']).values(seq=seq, prev_hash=prev, hash=h))
        prev = h
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_seq'), ['seq'])
        batch_op.create_index('ix_audit_event_actor_action_at', ['actor_id', 'action', 'at'], unique=False)
    chain = op.create_table(
        'audit_chain',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain')),
    )
    op.bulk_insert(chain, [{'id': 1, 'seq': seq, 'hash': prev}])

    op.create_table(
        'login_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=24), nullable=False),
        sa.Column('unit_path', sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_login_event_account_id_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_event')),
    )
    with op.batch_alter_table('login_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_event_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_event_unit_path'), ['unit_path'], unique=False)
        batch_op.create_index('ix_login_event_username_at', ['username', 'at'], unique=False)
        batch_op.create_index('ix_login_event_address_at', ['address', 'at'], unique=False)

    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION tmis_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
    _append_only(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tmis_append_only()")
    op.drop_table('login_event')
    op.drop_table('audit_chain')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_actor_action_at')
        batch_op.drop_constraint('uq_audit_event_seq', type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.alter_column('doc_number', existing_type=sa.String(length=200), type_=sa.String(length=30))
    with op.batch_alter_table('teacher_history', schema=None) as batch_op:
        batch_op.drop_column('entered_by')
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.drop_constraint('uq_teacher_doc_type_doc_index', type_='unique')
        batch_op.create_unique_constraint('uq_teacher_doc_type_doc_number', ['doc_type', 'doc_number'])
        batch_op.drop_column('doc_index')
        batch_op.alter_column('doc_number', existing_type=sa.String(length=200), type_=sa.String(length=30))
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('generation')
        batch_op.drop_column('last_used_at')
    op.drop_table('password_history')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_id_index'))
        batch_op.drop_column('session_generation')
        batch_op.drop_column('email')
        batch_op.drop_column('id_index')
        batch_op.alter_column('id_number', existing_type=sa.String(length=200), type_=sa.String(length=30))
