"""The queue's index: a collector's worked cases, covering what the ranking reads.

Revision ID: 4aa5633424ba
Revises: bda87261a2bf
Create Date: 2026-11-23 13:51:37.251497

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "4aa5633424ba"
down_revision = "bda87261a2bf"
branch_labels = None
depends_on = None

WORKED = sa.text("status IN ('new', 'active', 'plan')")


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_queue",
            ["assigned_to_id", "last_contact_at", "referred_on", "id"],
            unique=False,
            postgresql_include=["status"],
            postgresql_where=WORKED,
            sqlite_where=WORKED,
        )


def downgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_queue")
