"""Statutes of limitations: when a case's debt becomes time-barred, and what follows from it.

12 CFR 1006.26(b) forbids suing, or threatening to sue, on a time-barred debt, and SPEC §6.11
adds what a state requires be said about one. The periods, the revival rules and the state
disclosures are data (cases/data/limitations.json, with the statute of each; to be reviewed
by counsel), looked up by the debtor's state and the referral's `debt_kind`; without a kind the
state's shortest period applies. The period runs from the due date, or from the last payment
where the state's law lets a payment restart it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.case import DEBT_KINDS, GUARDS, Case, TransitionError
from cases.ledger import LedgerEntry
from cases.model import utcnow
from cases.timezones import US_ZONES

DATA = Path(__file__).resolve().parent / "data" / "limitations.json"
KIND_LABELS = {
    "written_contract": "written contract",
    "open_account": "open account",
    "promissory_note": "promissory note",
    "oral": "oral contract",
}


@dataclass(frozen=True)
class StateLaw:
    state: str
    years: dict[str, int]
    source: str
    payment_restarts: bool  # a payment before the period runs out starts it again
    payment_revives: bool  # a payment after it ran out starts it again
    revival: str  # the rule in words, for the collector
    disclosure: str | None  # what the state requires be said on a time-barred debt
    disclosure_source: str | None


@lru_cache(maxsize=1)
def laws() -> dict[str, StateLaw]:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    found = {}
    for state, law in raw["states"].items():
        disclosure = law.get("disclosure") or {}
        found[state] = StateLaw(
            state=state,
            years={kind: int(law["years"][kind]) for kind in DEBT_KINDS},
            source=law["source"],
            payment_restarts=bool(law["payment_restarts"]),
            payment_revives=bool(law["payment_revives"]),
            revival=law["revival"],
            disclosure=disclosure.get("text"),
            disclosure_source=disclosure.get("source"),
        )
    return found


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Limitation:
    law: StateLaw
    kind: str | None  # the referral's debt_kind, None when it gave none
    applied_kind: str  # the kind whose period is used
    years: int
    runs_from: dt.date
    runs_from_what: str  # "the due date" or "the last payment"
    expires_on: dt.date  # the first day on which no suit may be brought

    def time_barred(self, on: dt.date) -> bool:
        return on >= self.expires_on

    def describe(self) -> str:
        kind = KIND_LABELS[self.applied_kind]
        why = (
            f"{kind}"
            if self.kind
            else f"kind of debt not given: the shortest period, {kind}, applies"
        )
        return (
            f"{self.law.state}: {self.years} years ({why}; {self.law.source}) from "
            f"{self.runs_from_what}, {self.runs_from.isoformat()}"
        )


def limitation(
    state: str, kind: str | None, due_date: dt.date, payments: Iterable[dt.date] = ()
) -> Limitation | None:
    """The limitation of a debt due on `due_date` with payments on `payments`, under the law
    of `state`; None when the state's law is not on file."""
    law = laws().get((state or "").strip().upper())
    if law is None:
        return None
    if kind is not None and kind not in DEBT_KINDS:
        raise ValueError(f"debt_kind must be one of: {', '.join(DEBT_KINDS)} (got {kind!r})")
    applied = kind or min(DEBT_KINDS, key=lambda k: (law.years[k], DEBT_KINDS.index(k)))
    years = law.years[applied]
    runs_from, what = due_date, "the due date"
    for paid_on in sorted(p for p in payments if p is not None and p > due_date):
        if paid_on < add_years(runs_from, years):
            restarts = law.payment_restarts
        else:
            restarts = law.payment_revives
        if restarts:
            runs_from, what = paid_on, "the last payment"
    return Limitation(law, kind, applied, years, runs_from, what, add_years(runs_from, years))


def payment_dates(session: Session, case: Case) -> list[dt.date]:
    """The referral's last payment and every payment since (by the agency or to the client)
    that was not reversed in full."""
    entries = session.execute(
        sa.select(LedgerEntry.id, LedgerEntry.received_at, LedgerEntry.amount_cents).where(
            LedgerEntry.case_id == case.id,
            LedgerEntry.kind.in_(("payment", "direct_payment")),
            LedgerEntry.reverses_id.is_(None),
        )
    ).all()
    reversed_cents = dict(
        session.execute(
            sa.select(LedgerEntry.reverses_id, sa.func.sum(LedgerEntry.amount_cents))
            .where(LedgerEntry.case_id == case.id, LedgerEntry.reverses_id.is_not(None))
            .group_by(LedgerEntry.reverses_id)
        ).all()
    )
    return _unreversed(case, entries, reversed_cents)


def payment_dates_of(case: Case, entries: Iterable[LedgerEntry]) -> list[dt.date]:
    """`payment_dates` from the case's whole ledger already read (the case screen's)."""
    entries = list(entries)
    reversed_cents: dict[int, int] = {}
    for e in entries:
        if e.reverses_id is not None:
            reversed_cents[e.reverses_id] = reversed_cents.get(e.reverses_id, 0) + e.amount_cents
    payments = [
        (e.id, e.received_at, e.amount_cents)
        for e in entries
        if e.kind in ("payment", "direct_payment") and e.reverses_id is None
    ]
    return _unreversed(case, payments, reversed_cents)


def _unreversed(case: Case, payments, reversed_cents: dict[int, int]) -> list[dt.date]:
    dates = [case.last_payment_date] if case.last_payment_date else []
    for entry_id, received_at, amount in payments:
        # A payment is a negative amount; its reversals are positive.
        if amount + (reversed_cents.get(entry_id) or 0) < 0:
            dates.append(received_at)
    return dates


def case_state(case: Case) -> str:
    address = case.debtor.primary_address
    return address.state.strip().upper() if address else ""


def of_case(session: Session, case: Case) -> Limitation | None:
    return limitation(case_state(case), case.debt_kind, case.due_date, payment_dates(session, case))


def of_case_ledger(case: Case, entries: Iterable[LedgerEntry]) -> Limitation | None:
    """`of_case` from the case's whole ledger already read (no query)."""
    return limitation(
        case_state(case), case.debt_kind, case.due_date, payment_dates_of(case, entries)
    )


def latest_us_date(now: dt.datetime | None = None) -> dt.date:
    """The date in the US zone that is furthest ahead: a debt time-barred anywhere the debtor
    may be is time-barred."""
    now = now or utcnow()
    return max(now.astimezone(ZoneInfo(zone)).date() for zone in US_ZONES)


def _barred(session: Session, case: Case, on: dt.date) -> Limitation | None:
    """The case's limitation when the debt is time-barred on `on`, else None. A payment only
    moves the limitation date later, so the ledger is read only for a debt that is time-barred
    counted from its due date (these checks run on every letter, email and portal page)."""
    state = case_state(case)
    from_due_date = limitation(state, case.debt_kind, case.due_date)
    if from_due_date is None or not from_due_date.time_barred(on):
        return None
    found = limitation(state, case.debt_kind, case.due_date, payment_dates(session, case))
    return found if found.time_barred(on) else None


def is_time_barred(session: Session, case: Case, on: dt.date) -> bool:
    return _barred(session, case, on) is not None


def disclosure(session: Session, case: Case, on: dt.date) -> str | None:
    """The words the debtor's state requires on a communication about this debt, when it is
    time-barred and the state requires any (Regulation F prescribes none)."""
    law = laws().get(case_state(case))
    if law is None or not law.disclosure:
        return None
    found = _barred(session, case, on)
    if found is None:
        return None
    name = case.client.name
    return found.law.disclosure.replace("{CREDITOR}", name.upper()).replace("{creditor}", name)


def _refuse_legal_when_time_barred(
    session: Session, case: Case, new_status: str, close_reason: str | None
) -> None:
    # 12 CFR 1006.26(b): no suit, and no threat of suit, on a time-barred debt.
    if new_status != "closed" or close_reason != "legal":
        return
    found = of_case(session, case)
    if found is None:
        raise TransitionError(
            f"No statute of limitations is on file for the debtor's state "
            f"({case_state(case) or 'none'}): the debt cannot be shown not to be time-barred, "
            f"so it cannot go to legal."
        )
    if found.time_barred(latest_us_date()):
        raise TransitionError(
            f"The debt is time-barred since {found.expires_on.isoformat()} "
            f"({found.describe()}): no suit and no threat of suit (12 CFR 1006.26(b)), so it "
            f"cannot go to legal."
        )


GUARDS.append(_refuse_legal_when_time_barred)
