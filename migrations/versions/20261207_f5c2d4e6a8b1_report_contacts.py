"""report_contacts: the collectors report's contacts count, kept with each contact (issue 21)

Per user (0 for none) and month of the contact in the agency's zone (AGENCY_TIMEZONE, as the
app reads it), the contacts recorded (cases/report_totals.py); counted here from the contacts
as they are (in SQL on PostgreSQL, read through on SQLite, which has no time zones).

Revision ID: f5c2d4e6a8b1
Revises: f5a1c3e7b9d2
Create Date: 2026-12-07 07:40:00

"""
import datetime as dt
import os
from collections import Counter
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f5c2d4e6a8b1'
down_revision = 'f5a1c3e7b9d2'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table('report_contacts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('contacts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'month', name=op.f('pk_report_contacts'))
    )
    zone = ZoneInfo(os.environ.get("AGENCY_TIMEZONE") or "America/New_York")
    contacts = sa.table(
        "contacts", sa.column("user_id", sa.Integer), sa.column("occurred_at", sa.DateTime)
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        local = sa.func.timezone(zone.key, contacts.c.occurred_at)
        month = sa.cast(sa.extract("year", local), sa.Integer) * 100 + sa.cast(
            sa.extract("month", local), sa.Integer
        )
        user = sa.func.coalesce(contacts.c.user_id, 0)
        op.execute(
            sa.insert(table).from_select(
                ["user_id", "month", "contacts"],
                sa.select(user, month, sa.func.count()).group_by(user, month),
            )
        )
        return
    counts = Counter()
    for user_id, occurred_at in connection.execute(sa.select(contacts)):
        if isinstance(occurred_at, str):
            occurred_at = dt.datetime.fromisoformat(occurred_at)
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=dt.timezone.utc)
        local = occurred_at.astimezone(zone)
        counts[(user_id or 0, local.year * 100 + local.month)] += 1
    rows = [
        {"user_id": user_id, "month": month, "contacts": n}
        for (user_id, month), n in sorted(counts.items())
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade():
    op.drop_table('report_contacts')
