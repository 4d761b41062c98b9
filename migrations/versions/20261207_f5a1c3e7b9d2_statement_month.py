"""monthly statements bounded by what is due: `cases.statement_month` and its partial index

The month (YYYY-MM) of the last statement of balance sent on a case, "" while its debtor asks
for them and none was sent yet, NULL when the debtor does not ask (cases/case.py). Filled here
from what was already sent: the latest month among the case's `sent_reminders` keys
(balance_statement:<case id>:<YYYY-MM>:<channel>), for the cases of the debtors who ask.

Revision ID: f5a1c3e7b9d2
Revises: b8c4d2e6f0a1
Create Date: 2026-12-07 07:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f5a1c3e7b9d2'
down_revision = 'b8c4d2e6f0a1'
branch_labels = None
depends_on = None

WHERE = "statement_month IS NOT NULL AND status IN ('active', 'plan', 'disputed')"
PREFIX = "balance_statement:"

cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("debtor_id", sa.Integer),
    sa.column("statement_month", sa.String),
)
debtors = sa.table("debtors", sa.column("id", sa.Integer), sa.column("monthly_statements", sa.Boolean))
sent = sa.table(
    "sent_reminders",
    sa.column("case_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
)


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("statement_month", sa.String(length=7), nullable=True))
    # The month in the key: after the prefix and the case id and its colon.
    start = len(PREFIX) + sa.func.length(sa.cast(sent.c.case_id, sa.String)) + 2
    last_sent = (
        sa.select(sa.func.max(sa.func.substr(sent.c.key, start, 7)))
        .where(sent.c.case_id == cases.c.id, sent.c.kind == "balance_statement")
        .scalar_subquery()
    )
    asking = sa.select(debtors.c.id).where(debtors.c.monthly_statements == sa.true())
    op.execute(
        sa.update(cases)
        .where(cases.c.debtor_id.in_(asking))
        .values(statement_month=sa.func.coalesce(last_sent, ""))
    )
    op.create_index(
        "ix_cases_statement_due",
        "cases",
        ["statement_month"],
        unique=False,
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade():
    op.drop_index("ix_cases_statement_due", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("statement_month")
