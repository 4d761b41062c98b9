"""Disputes: a debtor's challenge of the debt, and its verification."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case, change_status
from cases.documents import Document
from cases.model import Base, Timestamped, utcnow
from cases.plans import pause_for_hold, resume_after_hold
from cases.timezones import candidate_zones

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


def within_validation_period(case, received_at: dt.datetime) -> bool:
    """Before the notice is sent, or by the end of the period's last day in the debtor's local
    time, in any candidate zone (SPEC §6.7): the most generous one decides."""
    ends = case.validation_period_ends_on
    if ends is None:
        return True
    debtor = case.debtor
    zones = candidate_zones(
        [a.postal_code for a in debtor.addresses], [p.number for p in debtor.phones]
    )
    return any(received_at.astimezone(ZoneInfo(zone)).date() <= ends for zone in zones)


ORIGINAL_CREDITOR_REASON = "Asked for the name and address of the original creditor."


def record_dispute(
    session: Session,
    case,
    *,
    reason: str,
    channel: str,
    received_at: dt.datetime,
    actor: audit.Actor,
    kind: str = "dispute",
) -> Dispute:
    """Record a dispute, or a request for the original creditor (`kind`). Inside the validation
    period, judged on the debtor's local date, it holds the case (SPEC §3, §6.12): no
    collection until it is answered, and its payment plan is paused (cases.plans: a hold never
    breaks a plan). Outside it, the case is flagged, not held."""
    if kind not in KINDS:
        raise DisputeError(f"a request is one of: {', '.join(KINDS)}")
    reason = (reason or "").strip() or (ORIGINAL_CREDITOR_REASON if kind != "dispute" else "")
    if not reason:
        raise DisputeError("say what the debtor disputes")
    if len(reason) > 5000:
        raise DisputeError("the reason is longer than 5000 characters")
    if channel not in ("portal", "call", "letter", "email"):
        raise DisputeError("a dispute arrives by portal, call, letter or email")
    if received_at.tzinfo is None:
        raise DisputeError("the time the request arrived needs a time zone")
    if not case.is_open:
        raise DisputeError(f"this case is {case.status}; a dispute cannot hold it")
    inside = within_validation_period(case, received_at)
    dispute = Dispute(
        case_id=case.id,
        kind=kind,
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
        "dispute.received" if kind == "dispute" else "original_creditor.requested",
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
            reason=(
                "dispute received inside the validation period"
                if kind == "dispute"
                else "original creditor requested inside the validation period"
            ),
        )
    if inside:
        pause_for_hold(session, case, actor=actor)
    return dispute


def open_disputes(session: Session, case_id: int, kind: str | None = None) -> list[Dispute]:
    """The case's open disputes and original-creditor requests (or those of one kind)."""
    query = sa.select(Dispute).where(Dispute.case_id == case_id, Dispute.status == "open")
    if kind is not None:
        query = query.where(Dispute.kind == kind)
    return list(session.scalars(query.order_by(Dispute.received_at)))


def send_verification(
    session: Session,
    case,
    *,
    document_id: int | None,
    actor: audit.Actor,
    note: str = "",
    on_local: dt.date | None = None,
) -> None:
    """Verification sent: open disputes are answered and a held case resumes collection
    (unless an original-creditor request still holds it). Its paused payment plan resumes: at
    once if nothing fell due meanwhile, else on moved dates the debtor confirms
    (cases.plans.resume_after_hold). `on_local` is the day the hold ends in the agency's
    calendar (default: today in UTC)."""
    _answer(session, case, "dispute", document_id, actor, note, on_local)


# --- the client's side: what the agency needs, and the documents the client sends ---------------

# Documents the client uploads for the agency's answer (the verification it sends the debtor).
CLIENT_DOCUMENT = "client_verification"
# What the debtor sent (dispute_upload) and what the client sent: both shown to the client.
CLIENT_VISIBLE_DOCUMENTS = ("dispute_upload", CLIENT_DOCUMENT)


def client_disputes(session: Session, client_id: int) -> list[tuple[Dispute, Case]]:
    """A client's disputes and original-creditor requests, on its own cases only: the open
    ones first (oldest first: they are waiting longest), then the answered, newest first."""
    rows = session.execute(
        sa.select(Dispute, Case)
        .join(Case, Case.id == Dispute.case_id)
        .where(Case.client_id == client_id)
        .order_by(Dispute.received_at)
    ).all()
    open_ = [(d, c) for d, c in rows if d.status == "open"]
    done = [(d, c) for d, c in reversed(rows) if d.status != "open"]
    return open_ + done


def client_dispute(session: Session, client_id: int, dispute_id: int) -> tuple[Dispute, Case]:
    """One of the client's own disputes and its case; DisputeError for any other id."""
    row = session.execute(
        sa.select(Dispute, Case)
        .join(Case, Case.id == Dispute.case_id)
        .where(Dispute.id == dispute_id, Case.client_id == client_id)
    ).first()
    if row is None:
        raise DisputeError("no such dispute")
    return row[0], row[1]


def dispute_documents(session: Session, case_id: int) -> list[Document]:
    """The debtor's and the client's documents kept with a case, oldest first."""
    return list(
        session.scalars(
            sa.select(Document)
            .where(Document.case_id == case_id, Document.kind.in_(CLIENT_VISIBLE_DOCUMENTS))
            .order_by(Document.created_at, Document.id)
        )
    )


def what_the_agency_needs(dispute: Dispute, case: Case, documents: list[Document]) -> list[str]:
    """What the agency asks of the client to answer this request (empty once answered)."""
    if dispute.status != "open":
        return []
    if dispute.kind == "original_creditor":
        if (case.original_creditor_name or "").strip():
            return []
        return [
            "The original creditor's name and address: upload a document that shows them "
            "(a contract, an assignment or the creditor's own statement)."
        ]
    needs = [
        "A document that shows the debtor owes the debt: the signed agreement or contract, "
        "or the invoice(s) for the goods or services.",
        "A statement or ledger showing the amount: the balance on the itemisation date "
        f"({case.itemization_date.isoformat()}) and the payments and credits since.",
    ]
    if any(d.kind == CLIENT_DOCUMENT for d in documents):
        needs.append(
            "We have your documents: the agency checks them and sends the verification. "
            "Upload more only if the debtor's reason calls for it."
        )
    return needs


def accept_client_document(
    session: Session, dispute: Dispute, document: Document, *, actor: audit.Actor
) -> None:
    """Record that the client sent a document for an open dispute (the agency picks it up
    when it sends the verification)."""
    require_open(dispute)
    audit.record(
        session,
        actor,
        "dispute",
        dispute.id,
        "dispute.client_document",
        case_id=dispute.case_id,
        document_id=document.id,
        filename=document.filename,
    )


def require_open(dispute: Dispute) -> None:
    """Refuse documents for a dispute that was already answered (before anything is kept)."""
    if dispute.status != "open":
        raise DisputeError("this dispute has been answered; no more documents are needed")


def client_documents(session: Session, case_id: int) -> list[Document]:
    """The documents the client sent for a case, for the agency's verification."""
    return [d for d in dispute_documents(session, case_id) if d.kind == CLIENT_DOCUMENT]


def send_original_creditor(
    session: Session,
    case,
    *,
    document_id: int | None,
    actor: audit.Actor,
    on_local: dt.date | None = None,
) -> None:
    """The original creditor's name and address were sent (1006.38(c)): the requests are
    answered, and the hold lifts unless a dispute still holds the case."""
    if not (case.original_creditor_name or "").strip():
        raise DisputeError(
            "the referral gave no original creditor's name: ask the client for it first"
        )
    _answer(session, case, "original_creditor", document_id, actor, "", on_local)


def _answer(session, case, kind, document_id, actor, note, on_local) -> None:
    requests = open_disputes(session, case.id, kind)
    if not requests:
        raise DisputeError(
            "this case has no open dispute"
            if kind == "dispute"
            else "this case has no open request for the original creditor"
        )
    now = utcnow()
    enclosed = [d.id for d in client_documents(session, case.id)] if kind == "dispute" else []
    for request in requests:
        request.status = "verified" if kind == "dispute" else "answered"
        request.resolved_at = now
        request.verification_document_id = document_id
        audit.record(
            session,
            actor,
            "dispute",
            request.id,
            "dispute.verified" if kind == "dispute" else "original_creditor.answered",
            case_id=case.id,
            reason=note or None,
            client_documents=enclosed or None,
        )
    still_held = any(d.within_validation_period for d in open_disputes(session, case.id))
    if case.status == "disputed" and not still_held:
        reason = "verification sent" if kind == "dispute" else "original creditor sent"
        change_status(session, case, "active", actor=actor, reason=reason)
        resume_after_hold(session, case, today=on_local or now.date(), actor=actor)
