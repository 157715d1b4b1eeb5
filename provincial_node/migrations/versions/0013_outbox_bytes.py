"""outbox entries keep their record's canonical bytes and leaf hash (a batch is built by concatenating them)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_CHUNK = 1000


def upgrade() -> None:
    # the encoding of the protocol (pure; no node code): the bytes are exactly what a batch carries
    from sync_protocol.canonical import canonical_bytes
    from sync_protocol.records import record_hash

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_bytes', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=True))
    bind = op.get_bind()
    outbox = sa.table(
        'outbox',
        sa.column('version', sa.Integer()),
        sa.column('record', sa.JSON()),
        sa.column('record_bytes', sa.LargeBinary()),
        sa.column('leaf_hash', sa.LargeBinary()),
    )
    after = None
    while True:
        stmt = sa.select(outbox.c.version, outbox.c.record).order_by(outbox.c.version).limit(_CHUNK)
        if after is not None:
            stmt = stmt.where(outbox.c.version > after)
        rows = bind.execute(stmt).all()
        if not rows:
            break
        for version, record in rows:
            line = canonical_bytes(record)
            bind.execute(
                outbox.update()
                .where(outbox.c.version == version)
                .values(record_bytes=line, leaf_hash=record_hash(line))
            )
        after = rows[-1][0]
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('record_bytes', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column('leaf_hash', existing_type=sa.LargeBinary(length=32), nullable=False)
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text('ANALYZE outbox'))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('leaf_hash')
        batch_op.drop_column('record_bytes')
