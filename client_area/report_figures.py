"""A client's own reports over its own cases only: liquidation by placement month (placed vs.
collected) and the aging of its open balances, read from the running totals of
`cases.report_totals` (never the ledger). Plain rows, cents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.ledger import cents_sum
from cases.report_totals import ReportAging, ReportCases, ReportMoney
from payments.reports import AGING_BUCKETS, aging_band


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
    out: dict[int, PlacementMonth] = {
        key: PlacementMonth(f"{key // 100:04d}-{key % 100:02d}", cases=cases)
        for key, cases in session.execute(
            sa.select(ReportCases.placed_month, ReportCases.cases).where(
                ReportCases.client_id == client_id, ReportCases.cases != 0
            )
        )
    }
    for key, kind, amount in session.execute(
        sa.select(
            ReportMoney.placed_month,
            ReportMoney.kind,
            cents_sum(ReportMoney.amount_cents),
        )
        .where(ReportMoney.client_id == client_id)
        .group_by(ReportMoney.placed_month, ReportMoney.kind)
    ):
        if key not in out:
            continue
        if kind == "placement":
            out[key].placed += amount
        else:
            out[key].collected -= amount
    return [out[key] for key in sorted(out, reverse=True)]


@dataclass
class AgeBand:
    label: str
    cases: int = 0
    balance: int = 0


def aging(session: Session, client_id: int, today: dt.date) -> list[AgeBand]:
    """This client's open cases and their balances by days past due today, in the agency's
    bands (under 90 days, 90–180, 181–365, 1–2 years, over 2 years)."""
    band = aging_band(today, ReportAging.due_date)
    rows = session.execute(
        sa.select(band, cents_sum(ReportAging.cases), cents_sum(ReportAging.balance_cents))
        .where(ReportAging.client_id == client_id)
        .group_by(band)
    ).all()
    out = [AgeBand(label) for _, label in AGING_BUCKETS]
    for index, cases, balance in rows:
        out[index].cases = cases
        out[index].balance = balance
    return out
