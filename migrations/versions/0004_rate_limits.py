"""rate limits: token throttles per (client, address) pair, banner rate counters

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa



revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('token_throttles',
    sa.Column('pair', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('pair', name=op.f('pk_token_throttles'))
    )
    with op.batch_alter_table('token_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_throttles_last_failure_at'), ['last_failure_at'],
                              unique=False)
    op.create_table('rate_counters',
    sa.Column('bucket', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'window_start', name=op.f('pk_rate_counters'))
    )
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counters_expires_at'), ['expires_at'], unique=False)
    # the fixed-window counters per client id and per address let anyone lock a client out
    with op.batch_alter_table('token_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_failures_window_start'))
    op.drop_table('token_failures')


def downgrade() -> None:
    op.create_table('token_failures',
    sa.Column('bucket', sa.String(length=80), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'window_start', name=op.f('pk_token_failures'))
    )
    with op.batch_alter_table('token_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_failures_window_start'), ['window_start'], unique=False)
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_counters_expires_at'))
    op.drop_table('rate_counters')
    with op.batch_alter_table('token_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_throttles_last_failure_at'))
    op.drop_table('token_throttles')
