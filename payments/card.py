"""Paying by card in the portal: which cases take a card payment, the amounts allowed, and
what is left to pay on an accepted settlement. The portal asks; Stripe takes the money; the
webhook posts it (payments.webhooks)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from cases.case import Case
from cases.offers import SettlementOffer, accepted_offer, paid_toward

MIN_CARD_PAYMENT_CENTS = 500


class CardAmountError(ValueError):
    """An amount the portal does not charge: `kind` is "too_small" or "too_large"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def can_pay_by_card(case: Case, balance_cents: int) -> bool:
    """Whether the portal offers a card payment on a case: open, and owing the minimum."""
    return case.takes_payments and balance_cents >= MIN_CARD_PAYMENT_CENTS


def check_card_amount(amount_cents: int, balance_cents: int) -> int:
    """The amount, if the portal may charge it: at least the minimum, at most the balance."""
    if amount_cents < MIN_CARD_PAYMENT_CENTS:
        raise CardAmountError("too_small", "the smallest card payment is $5.00")
    if amount_cents > balance_cents:
        raise CardAmountError("too_large", "a card payment cannot be more than the balance")
    return amount_cents


def settlement_due(
    session: Session, case: Case, balance_cents: int, today: dt.date
) -> tuple[SettlementOffer | None, int]:
    """The accepted settlement still open today, and what is left to pay: on the settlement
    (never more than the balance), or the whole balance without one."""
    offer = accepted_offer(session, case.id)
    if offer is None or offer.shown_status(today) != "accepted":
        return None, balance_cents
    return offer, min(balance_cents, offer.amount_cents - paid_toward(session, offer))
