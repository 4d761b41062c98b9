"""a client's search with a status filter from the search index alone: `ix_cases_search`
covers (client_id, status, search_text), so a last name and a status are one index lookup.

Before, the trigram index found the client's matches of every status and PostgreSQL ANDed them
with a bitmap of every case in that status (210,000 at 500,000 cases a client), or read each
match from the table to drop the other statuses. A query without a status still uses the same
index (a GIN index serves any subset of its columns).

Revision ID: a5c1e3f7b9d2
Revises: b8c4d2e6f0a1
Create Date: 2026-12-07 07:10:00

"""

from alembic import op

revision = "a5c1e3f7b9d2"
down_revision = "b8c4d2e6f0a1"
branch_labels = None
depends_on = None


def _search_index(columns: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_cases_search", table_name="cases")
        op.create_index("ix_cases_search", "cases", columns)
        return
    # Built beside the old one (writes to cases wait, reads go on), then swapped: the old one
    # is dropped, which locks the table, only for the moment left before the commit.
    op.create_index(
        "ix_cases_search_next",
        "cases",
        columns,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index("ix_cases_search", table_name="cases")
    op.execute("ALTER INDEX ix_cases_search_next RENAME TO ix_cases_search")


def upgrade():
    _search_index(["client_id", "status", "search_text"])


def downgrade():
    _search_index(["client_id", "search_text"])
