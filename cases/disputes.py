"""Disputes: a debtor's challenge of the debt, and its verification."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import change_status
from cases.model import Base, Timestamped, utcnow
from cases.plans import pause_for_hold, resume_after_hold

DISPUTE_STATUSES = ("open", "verified", "answered", "withdrawn")
# A dispute of the debt (1006.38(d)), or a request for the original creditor's name and
# address (1006.38(c)): inside the validation period, each holds collection until answered.
KINDS = ("dispute", "original_creditor")


class Dispute(Timestamped, Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    received_at: Mapped[dt.datetime]
    channel: Mapped[str] = mapped_column(sa.String(10))  # portal, call, letter, email
    reason: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(20), default="dispute", server_default="dispute")
    # Inside the validation period a dispute holds the case (SPEC §3); outside it only flags.
    within_validation_period: Mapped[bool]
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    resolved_at: Mapped[dt.datetime | None]
    verification_document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class DisputeError(ValueError):
    """A dispute could not be recorded or resolved; the message says why."""


def within_validation_period(case, on: dt.date) -> bool:
    """Before the notice is sent, or up to the end of its validation period (inclusive)."""
    return case.validation_period_ends_on is None or on <= case.validation_period_ends_on


def record_dispute(
    session: Session,
    case,
    *,
    reason: str,
    channel: str,
    received_at: dt.datetime,
    actor: audit.Actor,
    on_local: dt.date | None = None,
) -> Dispute:
    """Record a dispute. Inside the validation period it holds the case (SPEC §3): no
    collection until verification is sent, and its payment plan is paused (cases.plans: a
    hold never breaks a plan). Outside it, the case is flagged, not held."""
    reason = (reason or "").strip()
    if not reason:
        raise DisputeError("say what the debtor disputes")
    if len(reason) > 5000:
        raise DisputeError("the reason is longer than 5000 characters")
    if channel not in ("portal", "call", "letter", "email"):
        raise DisputeError("a dispute arrives by portal, call, letter or email")
    if not case.is_open:
        raise DisputeError(f"this case is {case.status}; a dispute cannot hold it")
    inside = within_validation_period(case, on_local or received_at.date())
    dispute = Dispute(
        case_id=case.id,
        received_at=received_at,
        channel=channel,
        reason=reason,
        within_validation_period=inside,
        recorded_by_id=actor.user_id,
    )
    session.add(dispute)
    session.flush()
    audit.record(
        session,
        actor,
        "dispute",
        dispute.id,
        "dispute.received",
        case_id=case.id,
        within_validation_period=inside,
        channel=channel,
    )
    if inside and case.status != "disputed":
        change_status(
            session,
            case,
            "disputed",
            actor=actor,
            reason="dispute received inside the validation period",
        )
    if inside:
        pause_for_hold(session, case, actor=actor)
    return dispute


def open_disputes(session: Session, case_id: int) -> list[Dispute]:
    return list(
        session.scalars(
            sa.select(Dispute)
            .where(Dispute.case_id == case_id, Dispute.status == "open")
            .order_by(Dispute.received_at)
        )
    )


def send_verification(
    session: Session,
    case,
    *,
    document_id: int | None,
    actor: audit.Actor,
    note: str = "",
    on_local: dt.date | None = None,
) -> None:
    """Verification sent: open disputes are answered and a held case resumes collection. Its
    paused payment plan resumes: at once if nothing fell due meanwhile, else on moved dates
    the debtor confirms (cases.plans.resume_after_hold). `on_local` is the day the hold ends
    in the agency's calendar (default: today in UTC)."""
    disputes = open_disputes(session, case.id)
    if not disputes:
        raise DisputeError("this case has no open dispute")
    now = utcnow()
    for dispute in disputes:
        dispute.status = "verified"
        dispute.resolved_at = now
        dispute.verification_document_id = document_id
        audit.record(
            session,
            actor,
            "dispute",
            dispute.id,
            "dispute.verified",
            case_id=case.id,
            reason=note or None,
        )
    if case.status == "disputed":
        change_status(session, case, "active", actor=actor, reason="verification sent")
        resume_after_hold(session, case, today=on_local or now.date(), actor=actor)
