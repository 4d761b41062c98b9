"""the Stripe inbox: every verified webhook event kept as it arrived (`stripe_inbox`, unique by
event id) until the `stripe.apply_events` job applies it, with its failed attempts and last
error; a partial index finds the events not applied yet (payments/webhooks.py, issue 21).

Revision ID: d7e3b1a9c5f2
Revises: c4a5e7f9b2d6
Create Date: 2026-12-08 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d7e3b1a9c5f2"
down_revision = "c4a5e7f9b2d6"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stripe_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("type", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_inbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_stripe_inbox_event_id")),
    )
    with op.batch_alter_table("stripe_inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_inbox_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("applied_at IS NULL"),
            sqlite_where=sa.text("applied_at IS NULL"),
        )


def downgrade():
    with op.batch_alter_table("stripe_inbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_stripe_inbox_pending",
            postgresql_where=sa.text("applied_at IS NULL"),
            sqlite_where=sa.text("applied_at IS NULL"),
        )
    op.drop_table("stripe_inbox")
