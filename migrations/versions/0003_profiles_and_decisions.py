"""profiles and decisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:02:07.585375
"""
from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('subject', name=op.f('pk_erasures'))
    )
    op.create_table('subject_keys',
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('kek_id', sa.String(length=40), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rewrapped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('subject', name=op.f('pk_subject_keys'))
    )
    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_keys_kek_id'), ['kek_id'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('placement', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('policy_version', sa.String(length=80), nullable=False),
    sa.Column('personalized', sa.Boolean(), nullable=False),
    sa.Column('engine', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('explanation', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_version'], ['policy_versions.version'], name=op.f('fk_decisions_policy_version_policy_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index('ix_decisions_subject_made_at', ['subject', 'made_at'], unique=False)

    op.create_table('profile_values',
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('attribute', sa.String(length=64), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject'], ['subject_keys.subject'], name=op.f('fk_profile_values_subject_subject_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject', 'attribute', name=op.f('pk_profile_values'))
    )
    with op.batch_alter_table('profile_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profile_values_written_at'), ['written_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('profile_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_values_written_at'))

    op.drop_table('profile_values')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_subject_made_at')

    op.drop_table('decisions')
    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_keys_kek_id'))

    op.drop_table('subject_keys')
    op.drop_table('erasures')
