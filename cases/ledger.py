"""The ledger's records: the append-only money movements of a case. A balance is their sum.

The table lives here, at the bottom of the domain, because opening a case writes its
placements and the queue and the portal read balances; money received (payments, reversals,
their fees) is posted by `payments.posting`.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import report_totals
from cases.case import Case
from cases.model import Base, Timestamped

KINDS = ("placement", "payment", "direct_payment", "adjustment", "reversal", "settlement_writeoff")
PLACEMENT_COMPONENTS = ("principal", "interest", "fees")
METHODS = ("check", "ach", "wire", "cash", "card")


class LedgerEntry(Timestamped, Base):
    """One money movement. `amount_cents` is its effect on the balance: placements add,
    payments subtract, a reversal adds back what its payment took. `fee_cents` is the agency's
    fee earned (or, for a reversal, given back) by this movement, fixed when it was posted."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    component: Mapped[str | None] = mapped_column(sa.String(10))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    fee_bps: Mapped[int] = mapped_column(default=0)
    fee_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # The movement's identity outside this system (Stripe PaymentIntent id, check number,
    # import row): unique, so nothing is ever applied twice.
    external_id: Mapped[str] = mapped_column(sa.String(120), unique=True)
    method: Mapped[str | None] = mapped_column(sa.String(10))
    received_at: Mapped[dt.date] = mapped_column(index=True)
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id"), index=True)
    memo: Mapped[str | None] = mapped_column(sa.Text)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('placement','payment','direct_payment','adjustment','reversal',"
            "'settlement_writeoff')",
            name="kind",
        ),
    )


@event.listens_for(LedgerEntry, "before_update")
@event.listens_for(LedgerEntry, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("ledger entries are append-only: post a reversal or adjustment instead")


report_totals.watch(LedgerEntry)  # the reports' totals follow every flush (docs/reports.md)


class LedgerError(ValueError):
    """A posting was refused; the message says why."""


class DuplicatePosting(LedgerError):
    """The external id was already posted."""


def cents_sum(column) -> sa.ColumnElement[int]:
    """SUM of a cents column as an integer on every database (PostgreSQL's SUM of a bigint is a
    numeric, which would reach Python as a Decimal)."""
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def balance_cents(session: Session, case_id: int) -> int:
    return session.scalar(
        sa.select(cents_sum(LedgerEntry.amount_cents)).where(LedgerEntry.case_id == case_id)
    )


def entries_of(session: Session, case_id: int) -> list[LedgerEntry]:
    """A case's whole ledger in the order it happened (received, then posted): the one read
    the case pages (the staff's and the client's) take every figure they show from."""
    return session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case_id)
        .order_by(LedgerEntry.received_at, LedgerEntry.id)
    ).all()


def balances(session: Session, case_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        sa.select(LedgerEntry.case_id, cents_sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.case_id.in_(case_ids))
        .group_by(LedgerEntry.case_id)
    )
    found = dict(rows.all())
    return {case_id: found.get(case_id, 0) for case_id in case_ids}


def post_placement(
    session: Session,
    case: Case,
    component: str,
    amount_cents: int,
    external_id: str,
    received_at: dt.date,
) -> LedgerEntry:
    if component not in PLACEMENT_COMPONENTS:
        raise LedgerError(f"unknown placement component {component!r}")
    if amount_cents < 0:
        raise LedgerError("a placement amount cannot be negative")
    entry = LedgerEntry(
        case_id=case.id,
        kind="placement",
        component=component,
        amount_cents=amount_cents,
        external_id=external_id,
        received_at=received_at,
    )
    session.add(entry)
    return entry


def itemization(session: Session, case: Case) -> dict:
    """Reg F itemisation (12 CFR 1006.34(c)(2)) of the case's whole ledger; see `itemize`."""
    entries = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id))
    return itemize(case, entries)


def itemize(case: Case, entries) -> dict:
    """Reg F itemisation (12 CFR 1006.34(c)(2)): the amount on the itemisation date, then the
    interest, fees, payments and credits since, and the amount now. `entries`: all of the
    case's ledger entries.

    The referral's own itemisation (SPEC §5) is the start; a case opened without one owed what
    was placed. Money recorded after referral joins the "since" lines: payments (net of their
    reversals) as payments, write-offs and adjustments (net) as credits. The ledger knows no
    interest or fee charged after referral, so those lines are the referral's. `adds_up` is
    False, with the `problem`, when the lines do not make the ledger's balance or a line is
    negative (nothing the notice could print truthfully)."""
    placed = balance = payments = credits = 0
    for entry in entries:
        balance += entry.amount_cents
        if entry.kind == "placement":
            placed += entry.amount_cents
        elif entry.kind in ("payment", "direct_payment", "reversal"):
            payments -= entry.amount_cents
        else:  # adjustments either way and settlement write-offs
            credits -= entry.amount_cents
    referred = case.amount_on_itemization_date_cents is not None
    lines = {
        "amount_on_itemization_date_cents": (
            case.amount_on_itemization_date_cents if referred else placed
        ),
        "interest_cents": case.interest_since_itemization_cents if referred else 0,
        "fees_cents": case.fees_since_itemization_cents if referred else 0,
        "payments_cents": payments + (case.payments_since_itemization_cents if referred else 0),
        "credits_cents": credits + (case.credits_since_itemization_cents if referred else 0),
    }
    current = (
        lines["amount_on_itemization_date_cents"]
        + lines["interest_cents"]
        + lines["fees_cents"]
        - lines["payments_cents"]
        - lines["credits_cents"]
    )
    negative = [name.removesuffix("_cents") for name, cents in lines.items() if cents < 0]
    problem = None
    if current != balance:
        problem = (
            f"the itemisation makes {cents_text(current)} but the ledger's balance is "
            f"{cents_text(balance)}"
        )
    elif negative:
        problem = f"the itemisation would print a negative {', '.join(negative)}"
    return {
        "itemization_date": case.itemization_date.isoformat(),
        "itemization_date_type": case.itemization_date_type or "last_statement",
        **lines,
        "current_amount_cents": current,
        "adds_up": problem is None,
        "problem": problem,
    }


def cents_text(cents: int) -> str:
    """An amount in cents as dollars for a message: 1234567 -> "$12,345.67"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def balance_after(session: Session, entry: LedgerEntry) -> int:
    """The case's balance just after this entry was posted (for its receipt), with the
    settlement write-off this payment brought about: it is posted next, under the same lock."""
    through = session.scalar(
        sa.select(cents_sum(LedgerEntry.amount_cents)).where(
            LedgerEntry.case_id == entry.case_id, LedgerEntry.id <= entry.id
        )
    )
    following = session.scalar(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == entry.case_id, LedgerEntry.id > entry.id)
        .order_by(LedgerEntry.id)
        .limit(1)
    )
    if following is not None and following.kind == "settlement_writeoff":
        through += following.amount_cents
    return through


def amount_text(cents: int) -> str:
    """Cents as people read them in a message, "1,234.56" (integers only: no float is ever
    near money, however large the number)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
