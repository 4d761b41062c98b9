"""report totals: the sums the reports read, kept with every ledger write (issue 21)

Four tables (cases/report_totals.py, docs/reports.md), filled here from the ledger and the
cases as they are; from then on each flush keeps them.

Revision ID: b8c4d2e6f0a1
Revises: a7e0b1c2d3f4
Create Date: 2026-12-07 04:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8c4d2e6f0a1'
down_revision = 'a7e0b1c2d3f4'
branch_labels = None
depends_on = None

OPEN = ("new", "active", "plan", "disputed")
MONEY = ("payment", "direct_payment", "reversal")

cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("client_id", sa.Integer),
    sa.column("assigned_to_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("referred_on", sa.Date),
    sa.column("due_date", sa.Date),
)


def ledger(name):
    return sa.table(
        "ledger_entries",
        sa.column("id", sa.Integer),
        sa.column("case_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("amount_cents", sa.BigInteger),
        sa.column("fee_cents", sa.BigInteger),
        sa.column("received_at", sa.Date),
        sa.column("reverses_id", sa.Integer),
    ).alias(name)


def month_key(column):
    return sa.cast(sa.extract("year", column), sa.Integer) * 100 + sa.cast(
        sa.extract("month", column), sa.Integer
    )


def total(column):
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def upgrade():
    op.create_table('report_money',
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('placed_month', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'placed_month', 'month', 'kind', name=op.f('pk_report_money'))
    )
    op.create_table('report_cases',
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('placed_month', sa.Integer(), nullable=False),
    sa.Column('cases', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'placed_month', name=op.f('pk_report_cases'))
    )
    op.create_table('report_assignee',
    sa.Column('assignee_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('assignee_id', 'client_id', 'month', name=op.f('pk_report_assignee'))
    )
    op.create_table('report_aging',
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('cases', sa.BigInteger(), nullable=False),
    sa.Column('entered', sa.BigInteger(), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'due_date', name=op.f('pk_report_aging'))
    )
    _fill()


def _fill():
    e, o = ledger("e"), ledger("o")
    kind = sa.case(
        (e.c.kind == "placement", "placement"),
        (sa.func.coalesce(o.c.kind, e.c.kind) == "direct_payment", "direct"),
        else_="agency",
    )
    placed, month = month_key(cases.c.referred_on), month_key(e.c.received_at)
    money = (
        sa.select(cases.c.client_id, placed, month, kind, total(e.c.amount_cents), total(e.c.fee_cents))
        .select_from(e.join(cases, cases.c.id == e.c.case_id).outerjoin(o, o.c.id == e.c.reverses_id))
        .where(e.c.kind.in_(("placement",) + MONEY))
        .group_by(cases.c.client_id, placed, month, kind)
    )
    assignee = sa.func.coalesce(cases.c.assigned_to_id, 0)
    by_assignee = (
        sa.select(assignee, cases.c.client_id, month, total(e.c.amount_cents))
        .select_from(e.join(cases, cases.c.id == e.c.case_id))
        .where(e.c.kind.in_(MONEY))
        .group_by(assignee, cases.c.client_id, month)
    )
    counted = sa.select(cases.c.client_id, placed, sa.cast(sa.func.count(), sa.BigInteger)).group_by(
        cases.c.client_id, placed
    )
    aging = (
        sa.select(
            cases.c.client_id,
            cases.c.due_date,
            sa.cast(sa.func.count(sa.distinct(cases.c.id)), sa.BigInteger),
            sa.cast(sa.func.count(sa.distinct(e.c.case_id)), sa.BigInteger),
            total(e.c.amount_cents),
        )
        .select_from(cases.outerjoin(e, e.c.case_id == cases.c.id))
        .where(cases.c.status.in_(OPEN))
        .group_by(cases.c.client_id, cases.c.due_date)
    )
    for name, columns, select in (
        ("report_money", ("client_id", "placed_month", "month", "kind", "amount_cents", "fee_cents"), money),
        ("report_assignee", ("assignee_id", "client_id", "month", "amount_cents"), by_assignee),
        ("report_cases", ("client_id", "placed_month", "cases"), counted),
        ("report_aging", ("client_id", "due_date", "cases", "entered", "balance_cents"), aging),
    ):
        target = sa.table(name, *(sa.column(c) for c in columns))
        op.execute(target.insert().from_select(list(columns), select))


def downgrade():
    op.drop_table('report_aging')
    op.drop_table('report_assignee')
    op.drop_table('report_cases')
    op.drop_table('report_money')
