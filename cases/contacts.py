"""Contacts with debtors (calls, emails, letters, texts, portal messages) and internal notes."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
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


class ComplianceAlert(Timestamped, Base):
    """A contact that broke a rule, recorded after the fact, for a supervisor to review; or,
    with no contact, something a daily check found (`kind`: a validation notice overdue or not
    confirmed as mailed), raised once per case and kind."""

    __tablename__ = "compliance_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), unique=True)
    kind: Mapped[str | None] = mapped_column(sa.String(30))
    rules: Mapped[list[dict]] = mapped_column(default=list)
    resolved_at: Mapped[dt.datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("case_id", "kind", name="uq_compliance_alerts_kind"),)


def raise_alert(session: Session, case_id: int, kind: str, rule: str, message: str) -> bool:
    """Raise a case's alert of this kind unless it was already raised; True when raised."""
    if session.scalar(
        sa.select(ComplianceAlert.id).where(
            ComplianceAlert.case_id == case_id, ComplianceAlert.kind == kind
        )
    ):
        return False
    session.add(
        ComplianceAlert(case_id=case_id, kind=kind, rules=[{"rule": rule, "message": message}])
    )
    session.flush()
    return True


def add_note(session: Session, case, body: str, *, actor: audit.Actor) -> CaseNote:
    body = (body or "").strip()
    if not body:
        raise ValueError("the note is empty")
    if len(body) > 5000:
        raise ValueError("the note is longer than 5000 characters")
    note = CaseNote(case_id=case.id, user_id=actor.user_id, body=body)
    session.add(note)
    session.flush()
    audit.record(session, actor, "note", note.id, "note.added", case_id=case.id)
    return note
