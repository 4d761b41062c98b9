"""The demo's cases in the states worth trying: a dispute awaiting verification, an autopay
plan whose card was declined, a time-barred debt, a debtor with an attorney, a cease request.
Each is an ordinary demo case (demo/seed.py) taken one step further, the way it happens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.case import Case, change_status
from cases.debtors import record_attorney, record_cease
from cases.ledger import LedgerEntry
from cases.plans import Installment, PaymentPlan

SHOWCASE = ["dispute_pending", "declined_card", "time_barred", "attorney", "cease"]
TEXAS = ("TX", "75201", "Dallas", "214")  # 4 years for an open account


def showcase_case(
    session: Session, state: str, ordinary: Callable[..., Case], *, today, cap, actor
) -> Case:
    """A case in one of the states worth showing (SHOWCASE), built on an ordinary demo case
    (`ordinary(outcome, **choices)` makes one)."""
    if state == "dispute_pending":
        # Disputed inside its validation period, days ago; no verification sent yet.
        return ordinary("disputed", referred_days=18)
    if state == "time_barred":
        # Texas: 4 years for an open account; this one fell due 7 years before referral.
        return ordinary("active", place=TEXAS, due_days=7 * 365, debt_kind="open_account")
    case = ordinary("active", referred_days=60)
    debtor = case.debtor
    after_last_contact = min(
        (case.last_contact_at or case.validation_sent_at) + dt.timedelta(days=1), cap
    )
    if state == "attorney":
        record_attorney(
            session, debtor, name="Dana Whitfield, Esq.", phone="+12125550188",
            email="dwhitfield@example.com", at=after_last_contact, actor=actor, case_id=case.id,
        )  # fmt: skip
    elif state == "cease":
        record_cease(session, debtor, at=after_last_contact, actor=actor, case_id=case.id)
    elif state == "declined_card":
        declined_autopay_plan(session, case, today, cap, actor)
    return case


def declined_autopay_plan(session, case, today, cap, actor) -> PaymentPlan:
    """An autopay plan whose first installment, two days ago, was declined: retried in a day."""
    balance = sum(
        e.amount_cents
        for e in session.scalars(sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id))
    )
    plan = PaymentPlan(
        case_id=case.id,
        total_cents=balance,
        frequency="monthly",
        autopay=True,
        stripe_customer_id=f"cus_demo{case.id:06d}",
        stripe_payment_method_id=f"pm_demo{case.id:06d}",
        consented_at=min(cap, case.validation_sent_at + dt.timedelta(days=20)),
        consent_text="I authorise the agency to charge the card I save here for each installment.",
    )
    first = today - dt.timedelta(days=2)
    count = 4
    each = balance // count
    for seq in range(count):
        plan.installments.append(
            Installment(
                seq=seq + 1,
                due_on=first + dt.timedelta(days=30 * seq),
                amount_cents=each if seq < count - 1 else balance - each * (count - 1),
            )
        )
    declined = plan.installments[0]
    declined.status, declined.attempts, declined.last_error = "failed", 1, "card_declined"
    declined.next_attempt_on = first + dt.timedelta(days=3)
    session.add(plan)
    change_status(session, case, "plan", actor=actor, reason="payment plan agreed")
    return plan
