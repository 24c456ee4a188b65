"""consent ledger

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 13:29:51.174723
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_events_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_type'), ['type'], unique=False)

    op.create_table('audit_keys',
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('public_pem', sa.Text(), nullable=False),
    sa.Column('first_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_audit_keys'))
    )
    op.create_table('policy_versions',
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('declared_version', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_policy_versions'))
    )
    op.create_table('properties',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('origins', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_properties')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_properties_key_hash'))
    )
    op.create_table('subjects',
    sa.Column('pseudonym', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pseudonym', name=op.f('pk_subjects'))
    )
    op.create_table('notices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('purpose_versions', sa.JSON(), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('source', sa.JSON(), nullable=True),
    sa.Column('policy_version', sa.String(length=80), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_version'], ['policy_versions.version'], name=op.f('fk_notices_policy_version_policy_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_subject'), ['subject'], unique=False)

    op.create_table('receipts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('policy_version', sa.String(length=80), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('notice_id', sa.String(length=40), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('gpc', sa.Boolean(), nullable=False),
    sa.Column('tc_string', sa.Text(), nullable=True),
    sa.Column('source', sa.JSON(), nullable=True),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_receipts_notice_id_notices')),
    sa.ForeignKeyConstraint(['policy_version'], ['policy_versions.version'], name=op.f('fk_receipts_policy_version_policy_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts'))
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipts_subject'), ['subject'], unique=False)

    op.create_table('consent_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('receipt_id', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('purpose_version', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_consent_events_receipt_id_receipts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_events_receipt_id'), ['receipt_id'], unique=False)
        batch_op.create_index('ix_consent_events_subject_id', ['subject', 'id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('receipt_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_idempotency_keys_receipt_id_receipts')),
    sa.PrimaryKeyConstraint('actor', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('consent_state',
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('purpose_version', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('receipt_id', sa.String(length=40), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['consent_events.id'], name=op.f('fk_consent_state_event_id_consent_events')),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_consent_state_receipt_id_receipts')),
    sa.PrimaryKeyConstraint('subject', 'purpose', name=op.f('pk_consent_state'))
    )


def downgrade() -> None:
    op.drop_table('consent_state')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_events_subject_id')
        batch_op.drop_index(batch_op.f('ix_consent_events_receipt_id'))

    op.drop_table('consent_events')
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipts_subject'))

    op.drop_table('receipts')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_subject'))

    op.drop_table('notices')
    op.drop_table('subjects')
    op.drop_table('properties')
    op.drop_table('policy_versions')
    op.drop_table('audit_keys')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_type'))
        batch_op.drop_index(batch_op.f('ix_audit_events_subject'))
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
