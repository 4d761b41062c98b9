"""The agency's reports: collections by month, liquidation per client, aging of open balances,
collector performance, compliance alerts and disputes. Plain rows, amounts in cents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from cases.case import OPEN_STATUSES, Case
from cases.clients import Client
from cases.contacts import ComplianceAlert, Contact
from cases.disputes import Dispute
from cases.ledger import LedgerEntry, cents_sum
from cases.plans import PromiseToPay
from cases.users import User
from payments.statements import MONEY_KINDS, Month


def months(last: Month, count: int = 12) -> list[Month]:
    return [last.shift(i - count + 1) for i in range(count)]


@dataclass
class MonthCollections:
    month: str
    by_agency: int = 0
    by_client: int = 0
    fees: int = 0

    @property
    def total(self) -> int:
        return self.by_agency + self.by_client


def collections_by_month(session: Session, last: Month, count: int = 12) -> list[MonthCollections]:
    span = months(last, count)
    original = aliased(LedgerEntry)
    kind = sa.func.coalesce(original.kind, LedgerEntry.kind)
    rows = session.execute(
        sa.select(
            LedgerEntry.received_at,
            kind,
            cents_sum(LedgerEntry.amount_cents),
            cents_sum(LedgerEntry.fee_cents),
        )
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.kind.in_(MONEY_KINDS),
            LedgerEntry.received_at.between(span[0].start, last.end),
        )
        .group_by(LedgerEntry.received_at, kind)
    ).all()
    out = {str(m): MonthCollections(str(m)) for m in span}
    for day, money_kind, amount, fee in rows:
        row = out[str(Month.of(day))]
        if money_kind == "direct_payment":
            row.by_client -= amount
        else:
            row.by_agency -= amount
        row.fees += fee
    return list(out.values())


@dataclass
class Liquidation:
    code: str
    name: str
    placed: int
    collected: int

    @property
    def rate_bps(self) -> int:
        """Collected ÷ placed in basis points, rounded half-up."""
        return (self.collected * 10000 * 2 + self.placed) // (2 * self.placed) if self.placed else 0


def liquidation_by_client(session: Session) -> list[Liquidation]:
    rows = session.execute(
        sa.select(
            Client.code,
            Client.name,
            cents_sum(
                sa.case((LedgerEntry.kind == "placement", LedgerEntry.amount_cents), else_=0)
            ),
            cents_sum(
                sa.case((LedgerEntry.kind.in_(MONEY_KINDS), -LedgerEntry.amount_cents), else_=0)
            ),
        )
        .select_from(Client)
        .outerjoin(Case, Case.client_id == Client.id)
        .outerjoin(LedgerEntry, LedgerEntry.case_id == Case.id)
        .group_by(Client.id, Client.code, Client.name)
        .order_by(Client.code)
    ).all()
    return [Liquidation(*row) for row in rows]


AGING_BUCKETS = (
    (0, "under 90 days"),
    (90, "90–180"),
    (181, "181–365"),
    (366, "1–2 years"),
    (731, "over 2 years"),
)


@dataclass
class AgingBucket:
    label: str
    cases: int = 0
    balance: int = 0


def aging(session: Session, today: dt.date) -> list[AgingBucket]:
    """Open cases' balances by how many days past due they are today."""
    rows = session.execute(
        sa.select(Case.due_date, cents_sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(Case.status.in_(OPEN_STATUSES))
        .group_by(Case.id, Case.due_date)
    ).all()
    buckets = [AgingBucket(label) for _, label in AGING_BUCKETS]
    for due_date, balance in rows:
        days = (today - due_date).days
        index = max(i for i, (start, _) in enumerate(AGING_BUCKETS) if days >= start or i == 0)
        buckets[index].cases += 1
        buckets[index].balance += balance
    return buckets


@dataclass
class CollectorRow:
    email: str
    contacts: int = 0
    promises_kept: int = 0
    promises_due: int = 0  # kept or broken
    collected: int = 0


def collector_performance(session: Session, since: dt.date, zone: ZoneInfo) -> list[CollectorRow]:
    """Per collector since a day: contacts made, promises kept of those that fell due, and
    what was collected on the cases assigned to them."""
    start = dt.datetime.combine(since, dt.time(0), tzinfo=zone)
    users = session.scalars(
        sa.select(User).where(User.role.in_(("collector", "supervisor"))).order_by(User.email)
    ).all()
    out = {u.id: CollectorRow(u.email) for u in users}
    for user_id, count in session.execute(
        sa.select(Contact.user_id, sa.func.count())
        .where(Contact.occurred_at >= start, Contact.user_id.in_(out))
        .group_by(Contact.user_id)
    ):
        out[user_id].contacts = count
    for user_id, status, count in session.execute(
        sa.select(PromiseToPay.recorded_by_id, PromiseToPay.status, sa.func.count())
        .where(
            PromiseToPay.due_on >= since,
            PromiseToPay.status.in_(("kept", "broken")),
            PromiseToPay.recorded_by_id.in_(out),
        )
        .group_by(PromiseToPay.recorded_by_id, PromiseToPay.status)
    ):
        out[user_id].promises_due += count
        if status == "kept":
            out[user_id].promises_kept += count
    for user_id, amount in session.execute(
        sa.select(Case.assigned_to_id, cents_sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(
            LedgerEntry.kind.in_(MONEY_KINDS),
            LedgerEntry.received_at >= since,
            Case.assigned_to_id.in_(out),
        )
        .group_by(Case.assigned_to_id)
    ):
        out[user_id].collected = -amount
    return list(out.values())


@dataclass
class MonthCounts:
    month: str
    opened: int = 0
    resolved: int = 0


def _by_month(
    rows: list[tuple[dt.datetime, dt.datetime | None]], last: Month, zone: ZoneInfo
) -> list[MonthCounts]:
    out = {str(m): MonthCounts(str(m)) for m in months(last)}
    for opened, resolved in rows:
        key = str(Month.of(opened.astimezone(zone).date()))
        if key in out:
            out[key].opened += 1
        if resolved is not None:
            key = str(Month.of(resolved.astimezone(zone).date()))
            if key in out:
                out[key].resolved += 1
    return list(out.values())


def _window_start(last: Month, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(months(last)[0].start, dt.time(0), tzinfo=zone)


def compliance_alerts(session: Session, last: Month, zone: ZoneInfo) -> list[MonthCounts]:
    start = _window_start(last, zone)
    rows = session.execute(
        sa.select(ComplianceAlert.created_at, ComplianceAlert.resolved_at).where(
            sa.or_(ComplianceAlert.created_at >= start, ComplianceAlert.resolved_at >= start)
        )
    ).all()
    return _by_month(rows, last, zone)


def disputes(session: Session, last: Month, zone: ZoneInfo) -> list[MonthCounts]:
    start = _window_start(last, zone)
    rows = session.execute(
        sa.select(Dispute.received_at, Dispute.resolved_at).where(
            sa.or_(Dispute.received_at >= start, Dispute.resolved_at >= start)
        )
    ).all()
    return _by_month(rows, last, zone)


def still_open(session: Session) -> dict[str, int]:
    return {
        "alerts": session.scalar(
            sa.select(sa.func.count())
            .select_from(ComplianceAlert)
            .where(ComplianceAlert.resolved_at.is_(None))
        ),
        "disputes": session.scalar(
            sa.select(sa.func.count()).select_from(Dispute).where(Dispute.status == "open")
        ),
    }
