"""the queue's promises to chase: `cases.chase_from`, the first day a case has a promise or plan
to chase (the earliest open promise's due date, the day after a broken promise's, 1970-01-01
for a broken plan; NULL when none), its index by assignee, and the queue's index covering it
(cases/chase.py, issue 21).

Filled here, set-based, for the cases with an open or broken promise or a broken plan (the
rest stay NULL): one UPDATE probing each such case's promises and plans by their `case_id`
indexes. From then on every flush that changes a promise or plan keeps it.

Revision ID: c4a5e7f9b2d6
Revises: a9c3e5f7b2d4
Create Date: 2026-12-07 10:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c4a5e7f9b2d6"
down_revision = "a9c3e5f7b2d4"
branch_labels = None
depends_on = None

WORKED = "status IN ('new', 'active', 'plan')"


def _queue_index(include: list[str]) -> None:
    """The queue's index (b8c4d2e6f1a3), covering the columns its ranking reads."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_queue")
        batch_op.create_index(
            "ix_cases_queue",
            ["assigned_to_id", "last_contact_at", "referred_on", "id"],
            unique=False,
            postgresql_include=include,
            postgresql_where=sa.text(WORKED),
            sqlite_where=sa.text(WORKED),
        )


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chase_from", sa.Date(), nullable=True))
    # The indexes first, on the empty column, then the backfill (which updates them): an index
    # built in the transaction after its column was updated would be marked `indcheckxmin` on
    # PostgreSQL, unused by any query until every transaction older than this one ended.
    where = sa.text(f"chase_from IS NOT NULL AND {WORKED}")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_chase",
            ["assigned_to_id", "chase_from"],
            unique=False,
            postgresql_include=["program", "last_contact_at", "referred_on", "id"],
            postgresql_where=where,
            sqlite_where=where,
        )
    _queue_index(["status", "program", "chase_from"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    day_after = "p.due_on + 1" if postgresql else "date(p.due_on, '+1 day')"
    broken_plan = "DATE '1970-01-01'" if postgresql else "'1970-01-01'"
    # cases.chase.chase_from_of, as it stands at this revision.
    op.execute(
        "UPDATE cases SET chase_from = CASE WHEN EXISTS (SELECT 1 FROM payment_plans pl "
        f"WHERE pl.case_id = cases.id AND pl.status = 'broken') THEN {broken_plan} "
        f"ELSE (SELECT min(CASE WHEN p.status = 'open' THEN p.due_on ELSE {day_after} END) "
        "FROM promises_to_pay p WHERE p.case_id = cases.id AND p.status IN ('open', 'broken')) "
        "END WHERE cases.id IN (SELECT case_id FROM promises_to_pay "
        "WHERE status IN ('open', 'broken') UNION SELECT case_id FROM payment_plans "
        "WHERE status = 'broken')"
    )
    if postgresql:
        op.execute("ANALYZE cases")  # the new column's statistics, for the queue's plans


def downgrade():
    _queue_index(["status", "program"])
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_chase")
        batch_op.drop_column("chase_from")
