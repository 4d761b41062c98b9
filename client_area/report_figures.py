"""A client's own reports, each one SQL aggregate over its own cases only: liquidation by
placement month (placed vs. collected) and the aging of its open balances. Plain rows, cents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.case import OPEN_STATUSES, Case
from cases.ledger import LedgerEntry, cents_sum
from payments.reports import AGING_BUCKETS
from payments.statements import MONEY_KINDS, Month


@dataclass
class PlacementMonth:
    month: str  # YYYY-MM the accounts were referred in
    cases: int = 0
    placed: int = 0
    collected: int = 0  # by the agency and paid to the client directly, net of reversals

    @property
    def rate_bps(self) -> int:
        """Collected ÷ placed in basis points, rounded half-up."""
        if not self.placed:
            return 0
        return (self.collected * 10000 * 2 + self.placed) // (2 * self.placed)


def liquidation_by_placement_month(session: Session, client_id: int) -> list[PlacementMonth]:
    """Per month of referral, newest first: the cases placed, what was placed, what has been
    collected on them since (whenever it came in), for this client's cases only."""
    rows = session.execute(
        sa.select(
            Case.referred_on,
            sa.func.count(sa.distinct(Case.id)),
            cents_sum(
                sa.case((LedgerEntry.kind == "placement", LedgerEntry.amount_cents), else_=0)
            ),
            cents_sum(
                sa.case((LedgerEntry.kind.in_(MONEY_KINDS), -LedgerEntry.amount_cents), else_=0)
            ),
        )
        .select_from(Case)
        .outerjoin(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(Case.client_id == client_id)
        .group_by(Case.referred_on)
    ).all()
    # Grouped by day in SQL (portable); folded into months here, a handful of rows per month.
    out: dict[str, PlacementMonth] = {}
    for day, cases, placed, collected in rows:
        key = str(Month.of(day))
        row = out.setdefault(key, PlacementMonth(key))
        row.cases += cases
        row.placed += placed
        row.collected += collected
    return [out[key] for key in sorted(out, reverse=True)]


@dataclass
class AgeBand:
    label: str
    cases: int = 0
    balance: int = 0


def aging(session: Session, client_id: int, today: dt.date) -> list[AgeBand]:
    """This client's open cases and their balances by days past due today, in the agency's
    bands (under 90 days, 90–180, 181–365, 1–2 years, over 2 years)."""
    # The band, as a CASE on the due date: days past due >= start <=> due_date <= today - start.
    band = sa.case(
        *(
            (Case.due_date <= today - dt.timedelta(days=start), index)
            for index, (start, _) in reversed(list(enumerate(AGING_BUCKETS)))
            if index
        ),
        else_=0,
    )
    balances = (
        sa.select(
            Case.id.label("case_id"),
            band.label("band"),
            cents_sum(LedgerEntry.amount_cents).label("balance"),
        )
        .outerjoin(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(Case.client_id == client_id, Case.status.in_(OPEN_STATUSES))
        .group_by(Case.id, Case.due_date)
        .subquery()
    )
    rows = session.execute(
        sa.select(balances.c.band, sa.func.count(), cents_sum(balances.c.balance)).group_by(
            balances.c.band
        )
    ).all()
    out = [AgeBand(label) for _, label in AGING_BUCKETS]
    for index, cases, balance in rows:
        out[index].cases = cases
        out[index].balance = balance
    return out
