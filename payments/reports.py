"""The agency's reports: collections by month, liquidation per client and by placement month
(vintages), aging of open balances, collector performance and promises, compliance alerts and
disputes. Plain rows, amounts in cents. The money figures and the contacts count read the
running totals of `cases.report_totals` (kept with every ledger and contact write), never the
ledger or the contacts themselves; only the promise outcomes look up the payments of the
promises' own cases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.case import Case
from cases.clients import Client
from cases.contacts import ComplianceAlert
from cases.disputes import Dispute
from cases.ledger import cents_sum
from cases.plans import PromiseToPay
from cases.report_totals import (
    ReportAging,
    ReportAssignee,
    ReportCases,
    ReportContacts,
    ReportMoney,
    ReportPromise,
    month_of,
)
from cases.users import User
from payments.statements import Month


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
    rows = session.execute(
        sa.select(
            ReportMoney.month,
            ReportMoney.kind,
            cents_sum(ReportMoney.amount_cents),
            cents_sum(ReportMoney.fee_cents),
        )
        .where(
            ReportMoney.kind.in_(("agency", "direct")),
            ReportMoney.month.between(month_of(span[0].start), month_of(last.start)),
        )
        .group_by(ReportMoney.month, ReportMoney.kind)
    ).all()
    out = {str(m): MonthCollections(str(m)) for m in span}
    for month, money_kind, amount, fee in rows:
        row = out[f"{month // 100:04d}-{month % 100:02d}"]
        if money_kind == "direct":
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
    totals = (
        sa.select(
            ReportMoney.client_id,
            cents_sum(
                sa.case((ReportMoney.kind == "placement", ReportMoney.amount_cents), else_=0)
            ).label("placed"),
            cents_sum(
                sa.case((ReportMoney.kind != "placement", -ReportMoney.amount_cents), else_=0)
            ).label("collected"),
        )
        .group_by(ReportMoney.client_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            Client.code,
            Client.name,
            sa.func.coalesce(totals.c.placed, 0),
            sa.func.coalesce(totals.c.collected, 0),
        )
        .outerjoin(totals, totals.c.client_id == Client.id)
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


def aging_band(today: dt.date, due_date) -> sa.ColumnElement[int]:
    """The index of an AGING_BUCKETS band, as a CASE on a due date column: days past due >=
    start <=> due_date <= today - start."""
    return sa.case(
        *(
            (due_date <= today - dt.timedelta(days=start), index)
            for index, (start, _) in reversed(list(enumerate(AGING_BUCKETS)))
            if index
        ),
        else_=0,
    )


def aging(session: Session, today: dt.date) -> list[AgingBucket]:
    """Open cases' balances by how many days past due they are today (the cases that have a
    ledger entry)."""
    band = aging_band(today, ReportAging.due_date)
    rows = session.execute(
        sa.select(
            band, cents_sum(ReportAging.entered), cents_sum(ReportAging.balance_cents)
        ).group_by(band)
    ).all()
    buckets = [AgingBucket(label) for _, label in AGING_BUCKETS]
    for index, cases, balance in rows:
        buckets[index].cases = cases
        buckets[index].balance = balance
    return buckets


def promise_outcomes(session: Session, *, today: dt.date, zone: ZoneInfo):
    """Each promise with what it became, as a subquery: `kept` when the payments on its case
    (to the agency or directly to the client, not reversed) from the day it was made to its due
    date reach its amount, or the reminders job already found it kept; `broken` when its due
    date has passed without that; `open` otherwise. What was paid towards each promise is kept
    with every write in `report_promises` (cases.report_totals). Columns: id, case_id,
    recorded_by_id, amount_cents, due_on, made_on, outcome."""
    kept = sa.or_(
        PromiseToPay.status == "kept", ReportPromise.paid_cents >= PromiseToPay.amount_cents
    )
    outcome = sa.case(
        (kept, "kept"),
        (PromiseToPay.due_on < today, "broken"),
        else_="open",
    )
    return (
        sa.select(
            PromiseToPay.id,
            PromiseToPay.case_id,
            PromiseToPay.recorded_by_id,
            PromiseToPay.amount_cents,
            PromiseToPay.due_on,
            ReportPromise.made_on.label("made_on"),
            outcome.label("outcome"),
        )
        .join(ReportPromise, ReportPromise.promise_id == PromiseToPay.id)
        .subquery("promise_outcomes")
    )


def _staff(session: Session, user_ids: list[int] | None) -> list[User]:
    query = sa.select(User).where(User.role.in_(("collector", "supervisor"))).order_by(User.email)
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
    return list(session.scalars(query))


def _collected_by_assignee(
    session: Session, since: dt.date, user_ids, client_ids: list[int] | None
) -> dict[int, int]:
    query = (
        sa.select(ReportAssignee.assignee_id, cents_sum(ReportAssignee.amount_cents))
        .where(
            ReportAssignee.month >= month_of(since),
            ReportAssignee.assignee_id.in_(user_ids),
        )
        .group_by(ReportAssignee.assignee_id)
    )
    if since.day != 1:
        raise ValueError("the totals are by month: collected since the first of a month")
    if client_ids is not None:
        query = query.where(ReportAssignee.client_id.in_(client_ids))
    return {user_id: -amount for user_id, amount in session.execute(query)}


@dataclass
class CollectorRow:
    email: str
    contacts: int = 0
    promises_kept: int = 0
    promises_due: int = 0  # kept or broken
    collected: int = 0


def collector_performance(
    session: Session, since: dt.date, zone: ZoneInfo, *, today: dt.date
) -> list[CollectorRow]:
    """Per collector since a day: contacts made, promises kept of those that fell due (kept or
    broken; a kept promise is one paid in full by its date, see `promise_outcomes`), and what
    was collected on the cases assigned to them."""
    if since.day != 1:
        raise ValueError("the totals are by month: contacts since the first of a month")
    out = {u.id: CollectorRow(u.email) for u in _staff(session, None)}
    # The contacts from the totals kept with each contact (cases.report_totals), by month in
    # the agency's zone (`zone`, the one the totals were kept in): never the contacts table.
    for user_id, count in session.execute(
        sa.select(ReportContacts.user_id, sa.cast(sa.func.sum(ReportContacts.contacts), sa.Integer))
        .where(ReportContacts.month >= month_of(since), ReportContacts.user_id.in_(out))
        .group_by(ReportContacts.user_id)
    ):
        out[user_id].contacts = count
    promise = promise_outcomes(session, today=today, zone=zone)
    for user_id, outcome, count in session.execute(
        sa.select(promise.c.recorded_by_id, promise.c.outcome, sa.func.count())
        .where(
            promise.c.due_on >= since,
            promise.c.outcome.in_(("kept", "broken")),
            promise.c.recorded_by_id.in_(out),
        )
        .group_by(promise.c.recorded_by_id, promise.c.outcome)
    ):
        out[user_id].promises_due += count
        if outcome == "kept":
            out[user_id].promises_kept += count
    for user_id, amount in _collected_by_assignee(session, since, list(out), None).items():
        out[user_id].collected = amount
    return list(out.values())


@dataclass
class PromiseRow:
    """One collector's promises made since a day (count and amount by what they became) and
    the money collected on the cases assigned to them."""

    email: str
    made: int = 0
    made_cents: int = 0
    kept: int = 0
    kept_cents: int = 0
    broken: int = 0
    broken_cents: int = 0
    open: int = 0
    open_cents: int = 0
    collected: int = 0

    @property
    def kept_rate_bps(self) -> int:
        """Kept ÷ (kept + broken), in basis points rounded half-up; 0 with none fallen due."""
        due = self.kept + self.broken
        return (self.kept * 20000 + due) // (2 * due) if due else 0


def promises_by_collector(
    session: Session,
    since: dt.date,
    *,
    today: dt.date,
    zone: ZoneInfo,
    client_ids: list[int] | None = None,
) -> list[PromiseRow]:
    """Each collector's promises made from `since` (in the agency's calendar) against the money
    collected on their cases from that day; `client_ids` limits both to those clients."""
    out = {u.id: PromiseRow(u.email) for u in _staff(session, None)}
    promise = promise_outcomes(session, today=today, zone=zone)
    query = (
        sa.select(
            promise.c.recorded_by_id,
            promise.c.outcome,
            sa.func.count(),
            cents_sum(promise.c.amount_cents),
        )
        .where(promise.c.made_on >= since, promise.c.recorded_by_id.in_(out))
        .group_by(promise.c.recorded_by_id, promise.c.outcome)
    )
    if client_ids is not None:
        query = query.join(Case, Case.id == promise.c.case_id).where(Case.client_id.in_(client_ids))
    for user_id, outcome, count, amount in session.execute(query):
        row = out[user_id]
        row.made += count
        row.made_cents += amount
        setattr(row, outcome, getattr(row, outcome) + count)
        setattr(row, f"{outcome}_cents", getattr(row, f"{outcome}_cents") + amount)
    for user_id, amount in _collected_by_assignee(session, since, list(out), client_ids).items():
        out[user_id].collected = amount
    return list(out.values())


@dataclass
class Vintage:
    """One placement month: what was placed, and the cumulative share of it collected by each
    month since placement (month 0 is the placement month itself); None for months not yet
    reached."""

    month: str
    cases: int
    placed: int
    collected: list[int]  # cumulative cents, by months since placement
    ages: int  # how many months since placement have been reached (including month 0)

    def rate_bps(self, age: int) -> int | None:
        if age >= self.ages or not self.placed:
            return None  # not reached yet, or nothing placed that month
        return (self.collected[age] * 20000 + self.placed) // (2 * self.placed)


def _index(key: int) -> int:
    """A year * 100 + month key as a count of months."""
    return (key // 100) * 12 + key % 100


def vintages(
    session: Session, last: Month, *, count: int = 12, client_ids: list[int] | None = None
) -> list[Vintage]:
    """Liquidation by placement month: for each of the `count` months to `last`, the amount
    placed on the cases referred that month and the cumulative amount collected on them (by the
    agency and directly, net of reversals) by months since placement, to `last`."""
    span = months(last, count)
    first, final = month_of(span[0].start), month_of(last.start)
    scope = [ReportCases.placed_month.between(first, final)]
    money_scope = [ReportMoney.placed_month.between(first, final)]
    if client_ids is not None:
        scope.append(ReportCases.client_id.in_(client_ids))
        money_scope.append(ReportMoney.client_id.in_(client_ids))
    cases = dict(
        session.execute(
            sa.select(ReportCases.placed_month, cents_sum(ReportCases.cases))
            .where(*scope)
            .group_by(ReportCases.placed_month)
        ).all()
    )
    placed: dict[int, int] = {}
    collected: dict[int, dict[int, int]] = {}
    for placed_month, month, kind, amount in session.execute(
        sa.select(
            ReportMoney.placed_month,
            ReportMoney.month,
            ReportMoney.kind,
            cents_sum(ReportMoney.amount_cents),
        )
        .where(*money_scope, ReportMoney.month <= final)
        .group_by(ReportMoney.placed_month, ReportMoney.month, ReportMoney.kind)
    ):
        index = _index(placed_month)
        if kind == "placement":
            placed[index] = placed.get(index, 0) + amount
            continue
        by_age = collected.setdefault(index, {})
        key = max(_index(month) - index, 0)  # a direct payment reported for before the referral
        by_age[key] = by_age.get(key, 0) - amount
    # Placements are dated by their own `received_at`; all of a case's count whatever the day.
    for placed_month, amount in session.execute(
        sa.select(ReportMoney.placed_month, cents_sum(ReportMoney.amount_cents))
        .where(*money_scope, ReportMoney.kind == "placement", ReportMoney.month > final)
        .group_by(ReportMoney.placed_month)
    ):
        index = _index(placed_month)
        placed[index] = placed.get(index, 0) + amount
    out = []
    for month in span:
        index = month.start.year * 12 + month.start.month
        ages = (last.start.year * 12 + last.start.month) - index + 1
        by_age = collected.get(index, {})
        running, cumulative = 0, []
        for a in range(ages):
            running += by_age.get(a, 0)
            cumulative.append(running)
        key = month_of(month.start)
        amount = placed.get(index, 0) if key in cases else 0
        out.append(Vintage(str(month), cases.get(key, 0), amount, cumulative, ages))
    return out


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
