"""What the portal shows a debtor about one case, read from the ledger and the case's records.

Plain data for the templates: every amount here is a sum of ledger entries, never a copy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from cases.case import Case
from cases.disputes import Dispute, open_disputes
from cases.documents import Document
from cases.ledger import LedgerEntry, itemize
from cases.offers import (
    LIVE,
    OFFERABLE_CASE_STATUSES,
    SettlementOffer,
    band_expiry,
    discount_on,
)
from cases.plans import Installment, PaymentPlan

MONEY_KINDS = ("payment", "direct_payment", "reversal")
# Offers a debtor can act on: approved for them (inside a collector's authority, or by a
# supervisor), or accepted and waiting for the payment. Expired ones are not shown.
VISIBLE_OFFERS = ("approved", "accepted")
SHOWN_DOCUMENTS = ("validation_notice", "plan_agreement", "settlement_letter")


@dataclass
class Account:
    case: Case
    balance_cents: int
    itemization: dict
    payments: list[LedgerEntry]
    validation_notice: Document | None
    offers: list[SettlementOffer]
    plan: PaymentPlan | None
    next_installment: Installment | None
    open_disputes: list[Dispute] = field(default_factory=list)
    settlement_letters: list[Document] = field(default_factory=list)
    # The client's self-service discount open to this case: (amount, balance, pay by).
    discount: tuple[int, int, dt.date] | None = None
    plan_agreement: Document | None = None


def account(session: Session, case: Case, today: dt.date) -> Account:
    """Everything the case page shows, in one read of each kind of record."""
    plan = (
        session.scalars(
            sa.select(PaymentPlan)
            .options(joinedload(PaymentPlan.installments))
            .where(PaymentPlan.case_id == case.id, PaymentPlan.status == "active")
            .order_by(PaymentPlan.id.desc())
        )
        .unique()
        .first()
    )
    # One read of the ledger for the balance, the itemisation and the history.
    entries = session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case.id)
        .order_by(LedgerEntry.received_at.desc(), LedgerEntry.id.desc())
    ).all()
    balance = sum(e.amount_cents for e in entries)
    live_offers = session.scalars(
        sa.select(SettlementOffer)
        .where(
            SettlementOffer.case_id == case.id,
            SettlementOffer.status.in_(LIVE),
            SettlementOffer.expires_on >= today,
        )
        .order_by(SettlementOffer.expires_on)
    ).all()
    # As band_quote decides it: open to offers, and no live one.
    quote = (
        discount_on(session, case, balance)
        if case.status in OFFERABLE_CASE_STATUSES and not live_offers
        else None
    )
    documents = session.scalars(
        sa.select(Document)
        .where(Document.case_id == case.id, Document.kind.in_(SHOWN_DOCUMENTS))
        .order_by(Document.id)
    ).all()

    def latest(kind: str) -> Document | None:
        return next((d for d in reversed(documents) if d.kind == kind), None)

    return Account(
        case=case,
        balance_cents=balance,
        itemization=itemize(case, entries),
        payments=[e for e in entries if e.kind in MONEY_KINDS],
        validation_notice=latest("validation_notice"),
        offers=[o for o in live_offers if o.status in VISIBLE_OFFERS],
        plan=plan,
        next_installment=(
            next((i for i in plan.installments if i.status != "paid"), None) if plan else None
        ),
        plan_agreement=latest("plan_agreement") if plan is not None else None,
        open_disputes=open_disputes(session, case.id),
        settlement_letters=[d for d in documents if d.kind == "settlement_letter"],
        discount=(quote[1], quote[2], band_expiry(quote[0], today, case)) if quote else None,
    )
