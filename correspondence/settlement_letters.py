"""Settlement letters: the terms, when the debtor accepts an offer, and settled in full, when
it is paid. Kept with the case as documents (kind `settlement_letter`)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit, limitations
from cases.case import Case
from cases.documents import Document
from cases.jobs import handles
from cases.ledger import LedgerEntry
from cases.offers import SettlementOffer
from correspondence.pdf import agency_letterhead, render_letter
from payments.posting import SETTLED_LETTER
from shell.document_store import store
from shell.timezone import agency_today


def letter_data(
    session: Session, offer: SettlementOffer, kind: str, *, on: dt.date, wording: str = ""
) -> dict:
    case = session.get(Case, offer.case_id)
    address = case.debtor.primary_address
    writeoff = session.scalar(
        sa.select(LedgerEntry).where(LedgerEntry.external_id == f"settlement:{offer.id}")
    )
    return {
        "kind": kind,
        "agency": agency_letterhead(),
        "reference": case.reference,
        "date": on,
        "debtor_name": case.debtor.display_name,
        "address": (
            [address.line1, address.line2, f"{address.city} {address.state} {address.postal_code}"]
            if address
            else []
        ),
        "creditor": case.client.name,
        "account_number": case.account_number,
        "balance_cents": offer.balance_cents,
        "amount_cents": offer.amount_cents,
        "saving_cents": offer.saving_cents,
        "expires_on": offer.expires_on.isoformat(),
        "max_installments": offer.max_installments,
        "accepted_at": offer.accepted_at.date().isoformat() if offer.accepted_at else "",
        "paid_cents": offer.amount_cents,
        "written_off_cents": -writeoff.amount_cents if writeoff else 0,
        "wording": wording,
        "time_barred_disclosure": limitations.disclosure(session, case, on),
    }


def make_letter(
    session: Session,
    offer: SettlementOffer,
    kind: str,
    *,
    actor: audit.Actor,
    wording: str = "",
) -> Document:
    on = agency_today()
    case = session.get(Case, offer.case_id)
    pdf = render_letter(
        "pdf/settlement.html",
        case.debtor.language,
        s=letter_data(session, offer, kind, on=on, wording=wording),
    )
    document = store(
        pdf,
        filename=f"{'settlement-terms' if kind == 'terms' else 'settled-in-full'}-"
        f"{case.reference}.pdf",
        content_type="application/pdf",
        kind="settlement_letter",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=actor.user_id,
    )
    audit.record(
        session,
        actor,
        "document",
        document.id,
        f"settlement_letter.{kind}",
        case_id=case.id,
        offer_id=offer.id,
    )
    return document


@handles(SETTLED_LETTER.name)
def settled_letter(session: Session, offer_id: int) -> str:
    """Job: the settled-in-full letter once an offer is paid (once per offer)."""
    offer = session.get(SettlementOffer, offer_id)
    if offer is None or offer.status != "paid":
        return "no paid offer"
    already = session.scalar(
        sa.select(Document.id).where(
            Document.case_id == offer.case_id,
            Document.kind == "settlement_letter",
            Document.filename.like("settled-in-full-%"),
        )
    )
    if already:
        return "already written"
    document = make_letter(session, offer, "settled", actor=audit.Actor(None, "settlements"))
    return f"letter {document.id}"
