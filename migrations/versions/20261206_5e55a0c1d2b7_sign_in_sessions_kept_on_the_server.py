"""sign-in sessions kept on the server, so signing out ends a session wherever its cookie is

One row per live session of a user or a debtor (cases/sessions.py): the SHA-256 of the token
the session cookie carries. Sessions signed in before this revision have no row: everyone signs
in again once.

Revision ID: 5e55a0c1d2b7
Revises: 5e1d0a7c91b4
Create Date: 2026-12-06 22:30:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5e55a0c1d2b7"
down_revision = "5e1d0a7c91b4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_in_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("debtor_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (debtor_id IS NULL)", name=op.f("ck_sign_in_sessions_one_holder")
        ),
        sa.ForeignKeyConstraint(
            ["debtor_id"], ["debtors.id"], name=op.f("fk_sign_in_sessions_debtor_id_debtors")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sign_in_sessions")),
    )
    with op.batch_alter_table("sign_in_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_sessions_debtor_id"), ["debtor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sign_in_sessions_started_at"), ["started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sign_in_sessions_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("sign_in_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_sign_in_sessions_started_at"))
        batch_op.drop_index(batch_op.f("ix_sign_in_sessions_debtor_id"))

    op.drop_table("sign_in_sessions")
