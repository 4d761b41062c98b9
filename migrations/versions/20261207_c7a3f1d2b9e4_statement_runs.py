"""statement runs: a month's statements issued from the agency's pages, one item per client

- `statement_runs`: a run of a month's statements, who started it and when;
- `statement_run_items`: one client's statement in a run, `waiting` until its job ran, then
  `issued`, `unchanged` (issued before, never twice) or `failed` with the reason.

Revision ID: c7a3f1d2b9e4
Revises: ee7b75f14ef6
Create Date: 2026-12-07 01:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7a3f1d2b9e4'
down_revision = 'ee7b75f14ef6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('statement_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_by', sa.String(length=80), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['started_by_id'], ['users.id'], name=op.f('fk_statement_runs_started_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_runs'))
    )
    op.create_table('statement_run_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('waiting','issued','unchanged','failed')", name=op.f('ck_statement_run_items_status')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_statement_run_items_client_id_clients')),
    sa.ForeignKeyConstraint(['run_id'], ['statement_runs.id'], name=op.f('fk_statement_run_items_run_id_statement_runs')),
    sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_statement_run_items_statement_id_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_run_items')),
    sa.UniqueConstraint('run_id', 'client_id', name='uq_statement_run_items_run_client')
    )
    with op.batch_alter_table('statement_run_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_run_items_run_id'), ['run_id'], unique=False)


def downgrade():
    with op.batch_alter_table('statement_run_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statement_run_items_run_id'))
    op.drop_table('statement_run_items')
    op.drop_table('statement_runs')
