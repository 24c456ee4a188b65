"""service auth

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:36:36.478098
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clients',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients'))
    )
    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('algorithm', sa.String(length=16), nullable=False),
    sa.Column('private_key_pem', sa.Text(), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_keys')),
    sa.UniqueConstraint('generation', name=op.f('uq_signing_keys_generation'))
    )
    op.create_table('token_failures',
    sa.Column('bucket', sa.String(length=80), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'window_start', name=op.f('pk_token_failures'))
    )
    with op.batch_alter_table('token_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_failures_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('token_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_failures_window_start'))

    op.drop_table('token_failures')
    op.drop_table('signing_keys')
    op.drop_table('clients')
