"""Documents kept with a case: notices and letters sent, uploads received, receipts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cases.model import Base, Timestamped

DOCUMENT_KINDS = (
    "validation_notice",
    "letter",
    "receipt",
    "dispute_upload",
    "verification",
    "client_verification",  # a client's documents for answering a dispute (cases.disputes)
    "plan_agreement",
    "settlement_letter",
    "referral_file",  # a client's referral file (cases.referrals), kept for its batch
    "other",
)


class Document(Timestamped, Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    debtor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    # Relative to the document store (outside the web root).
    storage_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
