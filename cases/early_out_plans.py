"""A short plan on the client's branded early-out page, within the client's terms (up to
`plan_max_installments` payments, monthly or every two weeks; cases.early_out.EarlyOutTerms).

The debtor sees the whole schedule before confirming; nothing is written until then. The first
payment falls due the day the plan is set up, and each is paid on the same branded page through
the same card flow (there is no autopay in early-out: its authorisation would name the agency).
The plan is a `PaymentPlan` of the early-out account, which stays `new` and `early_out`.

Our choice (README, docs/compliance.md): **a plan in good standing holds conversion** (and the
reminders) — the debtor is doing what the client asked. Once an installment is 10 days past due
unpaid (cases.plans.BREAK_AFTER_DAYS, as for collection plans), the early-out run breaks the
plan and conversion proceeds on the client's day (at once, if that day has passed). What is paid
counts toward the installments in order, from the ledger, so a payment made by any route counts.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, new_stamp
from cases.early_out import EarlyOutTerms, terms_of
from cases.ledger import balance_cents
from cases.model import utcnow
from cases.plans import (
    BREAK_AFTER_DAYS,
    UNPAID,
    Installment,
    PaymentPlan,
    PlanError,
    ScheduledPayment,
    active_plan,
    break_plan,
    build_schedule,
    settle_installments,
)

# Enough months for the longest early-out plan (MAX_PLAN_INSTALLMENTS monthly).
_MONTHS = 12


def plan_counts(terms: EarlyOutTerms) -> list[int]:
    """The numbers of payments the debtor may choose: none when the client offers no plans."""
    return list(range(2, terms.plan_max_installments + 1))


def early_out_schedule(
    session: Session, case: Case, *, count: int, today: dt.date
) -> list[ScheduledPayment]:
    """The schedule an early-out plan of `count` payments would have, checked, writing nothing:
    the balance in equal payments (the last takes the rounding), the first due today."""
    if case.program != "early_out" or case.status != "new":
        raise PlanError("this account cannot take a plan here")
    terms = terms_of(session, case.client_id)
    counts = plan_counts(terms)
    if not counts:
        raise PlanError("this account has no plans")
    if count not in counts:
        raise PlanError(f"choose from {counts[0]} to {counts[-1]} payments")
    if active_plan(session, case.id) is not None:
        raise PlanError("this account already has a plan")
    return build_schedule(
        total_cents=balance_cents(session, case.id),
        frequency=terms.plan_frequency,
        count=count,
        first_on=today,
        today=today,
        max_plan_months=_MONTHS,
    )


def create_early_out_plan(
    session: Session,
    case: Case,
    *,
    count: int,
    today: dt.date,
    consent_text: str,
    actor: audit.Actor,
) -> PaymentPlan:
    """Put the plan the debtor confirmed in force, with the wording they agreed to."""
    schedule = early_out_schedule(session, case, count=count, today=today)
    terms = terms_of(session, case.client_id)
    plan = PaymentPlan(
        case_id=case.id,
        total_cents=sum(p.amount_cents for p in schedule),
        down_payment_cents=0,
        frequency=terms.plan_frequency,
        status="active",
        autopay=False,
        consent_text=consent_text,
        consented_at=utcnow(),
        installments=[
            Installment(seq=p.seq, due_on=p.due_on, amount_cents=p.amount_cents, status="scheduled")
            for p in schedule
        ],
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.created",
        case_id=case.id,
        early_out=True,
        total_cents=plan.total_cents,
        frequency=plan.frequency,
        installments=len(schedule),
        first_on=today.isoformat(),
        consent=consent_text,
    )
    case.stamp = new_stamp()
    return plan


def in_good_standing(plan: PaymentPlan, today: dt.date) -> bool:
    """No installment is unpaid BREAK_AFTER_DAYS or more past its date."""
    cutoff = today - dt.timedelta(days=BREAK_AFTER_DAYS)
    return not any(i.status in UNPAID and i.due_on <= cutoff for i in plan.installments)


def next_installment(plan: PaymentPlan | None) -> Installment | None:
    if plan is None:
        return None
    return next((i for i in plan.installments if i.status in UNPAID), None)


def review_plans(session: Session, today: dt.date, *, actor: audit.Actor) -> list[int]:
    """The early-out run's first step: count what was paid toward each early-out plan, and
    break those no longer in good standing (their accounts then convert on the client's day).
    Returns the plans broken."""
    # Only plans with an installment unpaid BREAK_AFTER_DAYS past its date can fall out of
    # good standing (a payment settles its plan's installments as it is posted:
    # cases.plans.settle_plan_of_case), so only those are read, by the installments' partial index.
    cutoff = today - dt.timedelta(days=BREAK_AFTER_DAYS)
    plans = session.scalars(
        sa.select(PaymentPlan)
        .join(Case, Case.id == PaymentPlan.case_id)
        .where(
            Case.program == "early_out",
            PaymentPlan.status == "active",
            PaymentPlan.id.in_(
                sa.select(Installment.plan_id).where(
                    Installment.status.in_(UNPAID), Installment.due_on <= cutoff
                )
            ),
        )
        .order_by(PaymentPlan.id)
    ).all()
    broken = []
    for plan in plans:
        settle_installments(session, plan, actor=actor)
        if plan.status == "active" and not in_good_standing(plan, today):
            reason = f"an installment is {BREAK_AFTER_DAYS} days past due"
            if break_plan(session, plan, actor=actor, reason=reason):
                broken.append(plan.id)
                session.get(Case, plan.case_id).stamp = new_stamp()
    return broken
