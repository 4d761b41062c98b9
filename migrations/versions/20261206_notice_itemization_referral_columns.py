"""the referral's itemisation on the case (Reg F 1006.34(c)(2))

A case keeps which kind of reference date its itemisation date is and the referral's own
itemisation: what was owed on that date and the interest, fees, payments and credits since.
Cases opened before this revision keep NULL for the amount: what was placed is then taken as
owed on the itemisation date, with nothing since (as the notice showed them before). A referral
batch keeps the accepted rows that gave no itemisation date, for its preview to name.

Revision ID: 5e1d0a7c91b4
Revises: tb17a0c0ffee
Create Date: 2026-12-06 22:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1d0a7c91b4'
down_revision = 'tb17a0c0ffee'
branch_labels = None
depends_on = None

SINCE = (
    'interest_since_itemization_cents',
    'fees_since_itemization_cents',
    'payments_since_itemization_cents',
    'credits_since_itemization_cents',
)


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('itemization_date_type', sa.String(length=15), server_default='last_statement', nullable=False))
        batch_op.add_column(sa.Column('amount_on_itemization_date_cents', sa.BigInteger(), nullable=True))
        for name in SINCE:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_check_constraint(
            'itemization_date_type',
            "itemization_date_type IN ('last_statement','charge_off','last_payment','transaction','judgment')",
        )
    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_date_itemized_rows', sa.JSON(), server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.drop_column('due_date_itemized_rows')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_cases_itemization_date_type'), type_='check')
        for name in reversed(SINCE):
            batch_op.drop_column(name)
        batch_op.drop_column('amount_on_itemization_date_cents')
        batch_op.drop_column('itemization_date_type')
