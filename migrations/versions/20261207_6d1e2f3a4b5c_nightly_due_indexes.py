"""nightly jobs bounded by what is due: partial indexes of the due rows (issue 21)

See cases/due_indexes.py: open promises by due date, unpaid installments by status and due
date, plans in force by case and paused plans by their confirmation day, the debtors who asked
for monthly statements, new cases awaiting their validation notice, notices not yet confirmed
as mailed, and open early-out accounts by client and due date. Partial on PostgreSQL and
SQLite alike.

Revision ID: 6d1e2f3a4b5c
Revises: a7e0b1c2d3f4
Create Date: 2026-12-07 04:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6d1e2f3a4b5c'
down_revision = 'a7e0b1c2d3f4'
branch_labels = None
depends_on = None

# (name, table, columns, where)
INDEXES = (
    ('ix_promises_to_pay_open_due', 'promises_to_pay', ['due_on'], "status = 'open'"),
    (
        'ix_installments_unpaid_due',
        'installments',
        ['status', 'due_on'],
        "status IN ('scheduled', 'processing', 'failed', 'missed')",
    ),
    ('ix_payment_plans_active', 'payment_plans', ['case_id'], "status = 'active'"),
    ('ix_payment_plans_paused', 'payment_plans', ['reconfirm_by'], "status = 'paused'"),
    ('ix_debtors_monthly_statements', 'debtors', ['id'], 'monthly_statements'),
    (
        'ix_cases_awaiting_notice',
        'cases',
        ['program', 'first_communication_at'],
        "status = 'new' AND validation_sent_at IS NULL",
    ),
    (
        'ix_cases_notice_unmailed',
        'cases',
        ['validation_sent_at'],
        'validation_sent_at IS NOT NULL AND validation_mailed_on IS NULL',
    ),
    (
        'ix_cases_early_out_open',
        'cases',
        ['client_id', 'due_date'],
        "program = 'early_out' AND status = 'new'",
    ),
)


def upgrade():
    for name, table, columns, where in INDEXES:
        op.create_index(
            name,
            table,
            columns,
            unique=False,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def downgrade():
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
