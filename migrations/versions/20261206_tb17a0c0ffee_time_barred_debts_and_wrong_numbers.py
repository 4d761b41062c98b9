"""time-barred debts and wrong numbers

- `cases.debt_kind`: the kind of debt from the referral (written_contract, open_account,
  promissory_note, oral), for the statute of limitations (cases/limitations.py); NULL when the
  referral did not say (the state's shortest period is used).
- `debtor_phones.wrong_number_at`: a call reached someone else; the number is not the
  debtor's (SPEC §6.13).
- `debtor_phones.type`: mobile, home, work or other; the old `unknown` becomes `other` (a
  number not known to be the debtor's own, the stricter reading for Massachusetts).

Revision ID: tb17a0c0ffee
Revises: 84ce1f9118ca
Create Date: 2026-12-06 22:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "tb17a0c0ffee"
down_revision = "84ce1f9118ca"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("debt_kind", sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(
            "debt_kind",
            "debt_kind IN ('written_contract','open_account','promissory_note','oral')",
        )
    op.execute("UPDATE debtor_phones SET type = 'other' WHERE type NOT IN ('mobile','home','work')")
    with op.batch_alter_table("debtor_phones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrong_number_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint("type", "type IN ('mobile','home','work','other')")


def downgrade():
    with op.batch_alter_table("debtor_phones", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_debtor_phones_type"), type_="check")
        batch_op.drop_column("wrong_number_at")
    op.execute("UPDATE debtor_phones SET type = 'unknown' WHERE type = 'other'")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cases_debt_kind"), type_="check")
        batch_op.drop_column("debt_kind")
