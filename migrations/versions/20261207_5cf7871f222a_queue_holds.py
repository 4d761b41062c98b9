"""queue holds: cases a collector skipped today, with the reason and a callback time; an index
of audit events by actor and time (what a collector worked today)

Revision ID: 5cf7871f222a
Revises: c7a3f1d2b9e4
Create Date: 2026-12-07 01:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5cf7871f222a'
down_revision = 'c7a3f1d2b9e4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('queue_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('callback_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_queue_holds_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_queue_holds_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_holds'))
    )
    with op.batch_alter_table('queue_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queue_holds_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_queue_holds_user_created', ['user_id', 'created_at'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_actor_at', ['actor_user_id', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_actor_at')

    with op.batch_alter_table('queue_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_queue_holds_user_created')
        batch_op.drop_index(batch_op.f('ix_queue_holds_case_id'))

    op.drop_table('queue_holds')
