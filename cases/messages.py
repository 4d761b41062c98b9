"""Outbound emails and texts: the outbox, with what was sent, to whom, and how it went."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case
from cases.contact_log import gate, record_contact
from cases.jobs import declare, enqueue
from cases.model import Base, Timestamped, utcnow

DELIVER_EMAIL = declare("mail.deliver", queue="mail")
DELIVER_TEXT = declare("texts.deliver", queue="mail")

MESSAGE_STATUSES = ("queued", "sent", "failed")


class OutboundMessage(Timestamped, Base):
    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(sa.String(10), default="email")
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime | None]
    # The text provider's id for a sent text (what its delivery reports name).
    provider_id: Mapped[str | None] = mapped_column(sa.String(64))


class MessageError(ValueError):
    """A message could not be queued; the message says why."""


def send_case_email(
    session: Session,
    case: Case,
    *,
    to: str,
    subject: str,
    body: str,
    actor: audit.Actor,
    purpose: str = "collection",
) -> OutboundMessage:
    """Queue an email to the debtor if the rules allow it now, recording it as a contact.

    Raises ContactRefused (and records nothing) when a rule forbids it.
    """
    addresses = {e.address: e for e in case.debtor.emails}
    if to not in addresses:
        raise MessageError("send only to an email address on file for this debtor")
    if addresses[to].opted_out_at:
        raise MessageError(f"{to} opted out of email")
    now = utcnow()
    gate(session, case, "email", now, purpose=purpose)
    recorded = record_contact(
        session,
        case,
        channel="email",
        direction="outbound",
        occurred_at=now,
        actor=actor,
        target=to,
        subject=subject,
        body=body,
        purpose=purpose,
    )
    message = OutboundMessage(
        case_id=case.id, contact_id=recorded.contact.id, to_address=to, subject=subject, body=body
    )
    session.add(message)
    session.flush()
    enqueue(session, DELIVER_EMAIL, message.id)
    return message


TEXT_OPT_OUT = "Reply STOP to opt out"


def send_case_text(
    session: Session,
    case: Case,
    *,
    to: str,
    body: str,
    actor: audit.Actor,
    purpose: str = "collection",
) -> OutboundMessage:
    """Queue a text to the debtor if the rules allow it now, recording it as a contact.

    Only to a phone on file whose owner consented to texts and has not opted out; the body
    must carry the opt-out. Raises ContactRefused (and records nothing) when a rule forbids it.
    """
    phones = {p.number: p for p in case.debtor.phones}
    if to not in phones:
        raise MessageError("send texts only to a phone number on file for this debtor")
    phone = phones[to]
    if not phone.text_consent:
        raise MessageError(f"{to} has not consented to texts")
    if phone.texts_opted_out_at:
        raise MessageError(f"{to} opted out of texts")
    if "STOP" not in body:
        raise MessageError("a text must say how to opt out")
    now = utcnow()
    gate(session, case, "text", now, purpose=purpose)
    recorded = record_contact(
        session,
        case,
        channel="text",
        direction="outbound",
        occurred_at=now,
        actor=actor,
        target=to,
        body=body,
        purpose=purpose,
    )
    message = OutboundMessage(
        case_id=case.id,
        contact_id=recorded.contact.id,
        channel="text",
        to_address=to,
        subject="",
        body=body,
    )
    session.add(message)
    session.flush()
    enqueue(session, DELIVER_TEXT, message.id)
    return message
