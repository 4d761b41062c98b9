"""report totals: the sums the reports read, kept with every ledger write (issue 21)

Four tables (cases/report_totals.py, docs/reports.md), filled here from the ledger and the
cases as they are; from then on each flush keeps them.

Revision ID: b8c4d2e6f0a1
Revises: b16f11e5a0c1
Create Date: 2026-12-07 04:20:00

"""
import datetime as dt
import os
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8c4d2e6f0a1'
down_revision = 'b16f11e5a0c1'
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
    op.create_table('report_promises',
    sa.Column('promise_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('made_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('paid_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('promise_id', name=op.f('pk_report_promises'))
    )
    with op.batch_alter_table('report_promises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_promises_case_id'), ['case_id'], unique=False)
    _fill()
    _fill_promises()


def _fill_promises():
    """Each promise's made-on day in the agency's zone (AGENCY_TIMEZONE, as the app reads it)
    and what was paid towards it."""
    zone = ZoneInfo(os.environ.get("AGENCY_TIMEZONE") or "America/New_York")
    connection = op.get_bind()
    promises = sa.table(
        "promises_to_pay",
        sa.column("id", sa.Integer),
        sa.column("case_id", sa.Integer),
        sa.column("due_on", sa.Date),
        sa.column("created_at", sa.DateTime),
    )
    target = sa.table(
        "report_promises",
        *(sa.column(c) for c in ("promise_id", "case_id", "made_on", "due_on", "paid_cents")),
    )
    rows = connection.execute(
        sa.select(promises.c.id, promises.c.case_id, promises.c.due_on, promises.c.created_at)
    ).all()
    values = [
        {
            "promise_id": i,
            "case_id": c,
            "made_on": (made if made.tzinfo else made.replace(tzinfo=dt.timezone.utc))
            .astimezone(zone)
            .date(),
            "due_on": due,
            "paid_cents": 0,
        }
        for i, c, due, made in rows
    ]
    if values:
        connection.execute(target.insert(), values)
    e, rev = ledger("e"), ledger("rev")
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(-e.c.amount_cents), 0))
        .where(
            e.c.case_id == target.c.case_id,
            e.c.kind.in_(("payment", "direct_payment")),
            e.c.received_at >= target.c.made_on,
            e.c.received_at <= target.c.due_on,
            ~sa.exists().where(rev.c.reverses_id == e.c.id),
        )
        .scalar_subquery()
    )
    connection.execute(target.update().values(paid_cents=paid))


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
    with op.batch_alter_table('report_promises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_promises_case_id'))
    op.drop_table('report_promises')
    op.drop_table('report_aging')
    op.drop_table('report_assignee')
    op.drop_table('report_cases')
    op.drop_table('report_money')
