"""The collector's queue: which case to work next, and whether it may be called now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from cases.case import Case
from cases.compliance import Window, window
from cases.contact_log import RULES_LOOK_BACK, debtor_facts, histories
from cases.debtors import Debtor
from cases.ledger import LedgerEntry
from cases.plans import PaymentPlan, PromiseToPay

BUCKETS = {
    0: "promise due today",
    1: "broken promise or plan",
    2: "new, awaiting first contact",
    3: "follow up",
}
SITUATION_ORDER = {"juggling": 0, "hardship": 1, "unknown": 2, "avoiding": 3}
# How many more rows than shown are ranked, so callable cases can move ahead of the rest.
LOOKAHEAD = 4


@dataclass(frozen=True)
class QueueRow:
    case: Case
    balance_cents: int
    bucket: int
    call: Window

    @property
    def reason(self) -> str:
        return BUCKETS[self.bucket]


def _ranked(collector_id: int, today: dt.date) -> sa.Select:
    balance = (
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.case_id == Case.id)
        .scalar_subquery()
    )
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
    # The debtor's situation steers follow-ups: someone juggling payments is worth a call
    # soon, someone in hardship needs a plan conversation, someone avoiding us goes last.
    situation = sa.case(SITUATION_ORDER, value=Debtor.situation, else_=2)
    return (
        sa.select(Case, balance.label("balance"), bucket.label("bucket"))
        .join(Debtor, Debtor.id == Case.debtor_id)
        .where(Case.assigned_to_id == collector_id, Case.status.in_(("new", "active", "plan")))
        .order_by(
            bucket,
            situation,
            Case.last_contact_at.asc().nulls_first(),
            balance.desc(),
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
    ranked = [
        QueueRow(
            case, balance, bucket, window(debtor_facts(case), past.get(case.id, []), "call", now)
        )
        for case, balance, bucket in rows
    ]
    if only == "callable":
        ranked = [r for r in ranked if r.call.allowed]
    elif only == "new":
        ranked = [r for r in ranked if r.bucket == 2]
    elif only == "promises":
        ranked = [r for r in ranked if r.bucket in (0, 1)]
    # Stable: within "callable now" and "not now", the priority order above holds.
    ranked.sort(key=lambda r: not r.call.allowed)
    return ranked[:limit]
