"""early-out plans: a client's short-plan terms on the branded page

- `early_out_terms.plan_max_installments`: up to how many installments an early-out plan has
  (0: none offered; default 3);
- `early_out_terms.plan_frequency`: `monthly` or `biweekly`.

Revision ID: a7e0b1c2d3f4
Revises: e0a1f2b3c4d5
Create Date: 2026-12-07 02:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7e0b1c2d3f4'
down_revision = 'e0a1f2b3c4d5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('early_out_terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_max_installments', sa.Integer(), server_default='3', nullable=False))
        batch_op.add_column(sa.Column('plan_frequency', sa.String(length=10), server_default='monthly', nullable=False))
        batch_op.create_check_constraint('plan_frequency', "plan_frequency IN ('monthly','biweekly')")


def downgrade():
    with op.batch_alter_table('early_out_terms', schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_early_out_terms_plan_frequency"), type_="check")
        batch_op.drop_column('plan_frequency')
        batch_op.drop_column('plan_max_installments')
