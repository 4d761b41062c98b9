"""Disputes: a debtor's challenge of the debt, and its verification."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cases.model import Base, Timestamped

DISPUTE_STATUSES = ("open", "verified", "withdrawn")


class Dispute(Timestamped, Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    received_at: Mapped[dt.datetime]
    channel: Mapped[str] = mapped_column(sa.String(10))  # portal, call, letter, email
    reason: Mapped[str] = mapped_column(sa.Text)
    # Inside the validation period a dispute holds the case (SPEC §3); outside it only flags.
    within_validation_period: Mapped[bool]
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    resolved_at: Mapped[dt.datetime | None]
    verification_document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
