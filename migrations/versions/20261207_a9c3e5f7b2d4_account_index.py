"""a whole account number in the search box is looked up by `ix_cases_account`
(account_number, client_id) instead of the trigram index (issue 21)

On PostgreSQL with `text_pattern_ops`, so the search's check that no longer account number
starts with the one typed (LIKE 'text%') reads a range of it in any collation. One B-tree over
the cases: at 10,000,000 cases about a minute to build (docs/operations.md: a quiet hour).

Revision ID: a9c3e5f7b2d4
Revises: f5c2d4e6a8b1
Create Date: 2026-12-07 10:30:00

"""

from alembic import op

revision = "a9c3e5f7b2d4"
down_revision = "f5c2d4e6a8b1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_cases_account",
        "cases",
        ["account_number", "client_id"],
        postgresql_ops={"account_number": "text_pattern_ops"},
    )


def downgrade():
    op.drop_index("ix_cases_account", table_name="cases")
