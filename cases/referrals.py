"""Referral batches: the files clients hand over, and what became of each row."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cases.clients import Client
from cases.model import Base, Timestamped

BATCH_STATUSES = ("previewed", "queued", "importing", "imported", "failed", "cancelled")


class ReferralBatch(Timestamped, Base):
    __tablename__ = "referral_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(sa.String(10), default="upload")  # upload, cli, api
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    as_of: Mapped[dt.date]
    status: Mapped[str] = mapped_column(sa.String(10), default="previewed")
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    accepted_count: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[list[dict]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    finished_at: Mapped[dt.datetime | None]

    client: Mapped[Client] = relationship()
