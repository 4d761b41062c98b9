"""early-out: reminders in the client's name before collection

- `cases.program` (`collection` or `early_out`), `early_out_placed_on`, `early_out_converts`;
- `referral_batches.early_out_attested_at`: the client's per-file attestation;
- `early_out_terms`: a client's cadence, reply address, logo, conversion day and fee;
- `early_out_reminders`: each cadence step sent to an account, once;
- `statements.early_out`: the statement's early-out section;
- `early_out_replies`: a debtor's "I already paid" / "there is a problem", for the client.

Revision ID: e0a1f2b3c4d5
Revises: 5cf7871f222a
Create Date: 2026-12-07 01:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e0a1f2b3c4d5'
down_revision = '5cf7871f222a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('program', sa.String(length=10), server_default='collection', nullable=False))
        batch_op.add_column(sa.Column('early_out_placed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('early_out_converts', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index(batch_op.f('ix_cases_program'), ['program'], unique=False)
        batch_op.create_check_constraint('program', "program IN ('collection','early_out')")

    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('early_out_attested_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('early_out', sa.JSON(), nullable=True))

    op.create_table('early_out_terms',
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('cadence', sa.JSON(), nullable=False),
    sa.Column('reply_to', sa.String(length=254), nullable=True),
    sa.Column('logo_path', sa.String(length=200), nullable=True),
    sa.Column('convert_after_days', sa.Integer(), nullable=False),
    sa.Column('fee_kind', sa.String(length=10), nullable=False),
    sa.Column('fee_bps', sa.Integer(), nullable=False),
    sa.Column('flat_fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("fee_kind IN ('percent','flat')", name=op.f('ck_early_out_terms_fee_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_early_out_terms_client_id_clients')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_early_out_terms'))
    )
    op.create_table('early_out_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('tone', sa.String(length=10), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_early_out_reminders_case_id_cases')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_early_out_reminders_document_id_documents')),
    sa.ForeignKeyConstraint(['message_id'], ['outbound_messages.id'], name=op.f('fk_early_out_reminders_message_id_outbound_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_early_out_reminders')),
    sa.UniqueConstraint('case_id', 'day', name='uq_early_out_reminders_step')
    )
    with op.batch_alter_table('early_out_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_early_out_reminders_case_id'), ['case_id'], unique=False)
    op.create_table('early_out_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=15), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('already_paid','problem')", name=op.f('ck_early_out_replies_kind')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_early_out_replies_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_early_out_replies'))
    )
    with op.batch_alter_table('early_out_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_early_out_replies_case_id'), ['case_id'], unique=False)


def downgrade():
    with op.batch_alter_table('early_out_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_early_out_replies_case_id'))
    op.drop_table('early_out_replies')
    with op.batch_alter_table('early_out_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_early_out_reminders_case_id'))
    op.drop_table('early_out_reminders')
    op.drop_table('early_out_terms')
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_column('early_out')
    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.drop_column('early_out_attested_at')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint('program', type_='check')
        batch_op.drop_index(batch_op.f('ix_cases_program'))
        batch_op.drop_column('early_out_converts')
        batch_op.drop_column('early_out_placed_on')
        batch_op.drop_column('program')
