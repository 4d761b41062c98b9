"""The collector's queue: which case to work next, and whether it may be called now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from cases.case import Case
from cases.compliance import Window, check, window
from cases.contact_log import RULES_LOOK_BACK, debtor_facts, histories
from cases.debtors import Debtor
from cases.ledger import LedgerEntry, cents_sum
from cases.plans import PaymentPlan, PromiseToPay

BUCKETS = {
    0: "promise due today",
    1: "broken promise or plan",
    2: "new, awaiting first contact",
    3: "follow up",
}
SITUATION_ORDER = {"juggling": 0, "hardship": 1, "unknown": 2, "avoiding": 3}
# How many more rows than shown are ranked, so callable cases can move ahead of the rest.
LOOKAHEAD = 2


@dataclass
class QueueRow:
    case: Case
    balance_cents: int
    bucket: int
    callable_now: bool
    call: Window | None = None  # why not, and from when: worked out for the rows shown

    @property
    def reason(self) -> str:
        return BUCKETS[self.bucket]

    def score(self, now: dt.datetime) -> float:
        """Within a bucket: longer without contact, bigger balance, older account first."""
        last = self.case.last_contact_at
        idle_days = (now - last).days if last else 365
        age_days = self.case.days_past_due_at_referral
        return idle_days + self.balance_cents / 50_000 + age_days / 30


def _ranked(collector_id: int, today: dt.date) -> sa.Select:
    promise_today = sa.exists().where(
        PromiseToPay.case_id == Case.id,
        PromiseToPay.status == "open",
        PromiseToPay.due_on == today,
    )
    broken = sa.or_(
        sa.exists().where(
            PromiseToPay.case_id == Case.id,
            PromiseToPay.status.in_(("open", "broken")),
            PromiseToPay.due_on < today,
        ),
        sa.exists().where(PaymentPlan.case_id == Case.id, PaymentPlan.status == "broken"),
    )
    bucket = sa.case(
        (promise_today, 0),
        (broken, 1),
        (sa.or_(Case.status == "new", Case.last_contact_at.is_(None)), 2),
        else_=3,
    )
    # The balance is shown and scored but not sorted on in SQL: summing the ledger of every
    # one of a collector's cases to sort them would cost far more than the page is worth.
    balance = (
        sa.select(cents_sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.case_id == Case.id)
        .scalar_subquery()
    )
    return (
        sa.select(Case, balance.label("balance"), bucket.label("bucket"))
        .where(Case.assigned_to_id == collector_id, Case.status.in_(("new", "active", "plan")))
        .order_by(
            bucket,
            Case.last_contact_at.asc().nulls_first(),
            Case.referred_on.asc(),
            Case.id,
        )
    )


def queue_for(
    session: Session,
    collector_id: int,
    *,
    now: dt.datetime,
    today: dt.date,
    limit: int = 50,
    only: str = "",
) -> list[QueueRow]:
    """The collector's open cases in priority order, those callable now first."""
    query = _ranked(collector_id, today).options(
        selectinload(Case.debtor).selectinload(Debtor.addresses),
        selectinload(Case.debtor).selectinload(Debtor.phones),
        selectinload(Case.debtor).selectinload(Debtor.emails),
        selectinload(Case.client),
    )
    rows = session.execute(query.limit(limit * LOOKAHEAD)).all()
    past = histories(session, [c.id for c, _, _ in rows], since=now - RULES_LOOK_BACK)
    facts = {case.id: debtor_facts(case) for case, _, _ in rows}
    ranked = [
        QueueRow(
            case, balance, bucket, not check(facts[case.id], past.get(case.id, []), "call", now)
        )
        for case, balance, bucket in rows
    ]
    if only == "callable":
        ranked = [r for r in ranked if r.callable_now]
    elif only == "new":
        ranked = [r for r in ranked if r.bucket == 2]
    elif only == "promises":
        ranked = [r for r in ranked if r.bucket in (0, 1)]
    # Among the candidates: callable first, then the bucket, then the debtor's situation
    # (someone juggling payments is worth a call soon, someone in hardship needs a plan
    # conversation, someone avoiding us goes last), then the score.
    ranked.sort(
        key=lambda r: (
            not r.callable_now,
            r.bucket,
            SITUATION_ORDER.get(r.case.debtor.situation, 2),
            -r.score(now),
        )
    )
    shown = ranked[:limit]
    for row in shown:
        row.call = window(facts[row.case.id], past.get(row.case.id, []), "call", now)
    return shown
