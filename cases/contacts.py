"""Contacts with debtors (calls, emails, letters, texts, portal messages) and internal notes."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cases.model import Base, Timestamped

CHANNELS = ("call", "email", "letter", "text", "portal")
DIRECTIONS = ("outbound", "inbound")
CALL_OUTCOMES = ("no_answer", "voicemail", "busy", "wrong_number", "conversation")


class Contact(Timestamped, Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    direction: Mapped[str] = mapped_column(sa.String(10))
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The phone number, email address or postal address used.
    target: Mapped[str | None] = mapped_column(sa.String(300))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str | None] = mapped_column(sa.Text)
    document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    # Rules this contact broke, when it was recorded after the fact: [{"rule", "message"}].
    violations: Mapped[list[dict]] = mapped_column(default=list)

    __table_args__ = (
        sa.CheckConstraint("channel IN ('call','email','letter','text','portal')", name="channel"),
        sa.CheckConstraint("direction IN ('outbound','inbound')", name="direction"),
    )


class CaseNote(Timestamped, Base):
    """An internal note by agency staff; never shown to the client or the debtor."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(sa.Text)
