"""referral files in the document store: batches point to a stored document

- `referral_batches.document_id`: the uploaded file, kept in the document store (streamed there
  as it arrives); a batch uploaded before this revision keeps its file in `content`;
- `referral_batches.content` becomes nullable: new batches no longer write it.

Downgrade: a batch whose file is in the document store gets an empty `content` (the file stays
in the store, but the older release cannot find it: import or cancel those batches first).

Revision ID: b16f11e5a0c1
Revises: b8c4d2e6f1a3
Create Date: 2026-12-07 04:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b16f11e5a0c1'
down_revision = 'b8c4d2e6f1a3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_referral_batches_document_id_documents'), 'documents', ['document_id'], ['id']
        )
        batch_op.alter_column('content', existing_type=sa.LargeBinary(), nullable=True)


def downgrade():
    op.get_bind().execute(
        sa.text("UPDATE referral_batches SET content = :empty WHERE content IS NULL").bindparams(
            sa.bindparam("empty", b"", type_=sa.LargeBinary())
        )
    )
    with op.batch_alter_table('referral_batches', schema=None) as batch_op:
        batch_op.alter_column('content', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_referral_batches_document_id_documents'), type_='foreignkey')
        batch_op.drop_column('document_id')
