"""The reports as they were computed before the running totals (issue 21): SQL aggregates over
the ledger itself. The property test (test_report_totals.py) holds the totals to these."""

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
from client_area.report_figures import PlacementMonth
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


def local_date(session: Session, column, zone: ZoneInfo) -> sa.ColumnElement[dt.date]:
    """The agency-zone calendar day of a UTC time stamp column, in SQL. PostgreSQL converts with
    the zone's rules; SQLite (the embedded default) has none, so today's UTC offset is used."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone(zone.key, column), sa.Date)
    offset = int(dt.datetime.now(zone).utcoffset().total_seconds())
    return sa.func.date(column, f"{offset:+d} seconds")


def promise_outcomes(session: Session, *, today: dt.date, zone: ZoneInfo):
    """Each promise with what it became, as a subquery: `kept` when the payments on its case
    (to the agency or directly to the client, not reversed) from the day it was made to its due
    date reach its amount, or the reminders job already found it kept; `broken` when its due
    date has passed without that; `open` otherwise. Columns: id, case_id, recorded_by_id,
    amount_cents, due_on, made_on, outcome."""
    made_on = local_date(session, PromiseToPay.created_at, zone)
    reversal = aliased(LedgerEntry)
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(-LedgerEntry.amount_cents), 0))
        .where(
            LedgerEntry.case_id == PromiseToPay.case_id,
            LedgerEntry.kind.in_(("payment", "direct_payment")),
            LedgerEntry.received_at >= made_on,
            LedgerEntry.received_at <= PromiseToPay.due_on,
            LedgerEntry.received_at <= today,
            ~sa.exists().where(reversal.reverses_id == LedgerEntry.id),
        )
        .correlate(PromiseToPay)
        .scalar_subquery()
    )
    kept = sa.or_(PromiseToPay.status == "kept", paid >= PromiseToPay.amount_cents)
    outcome = sa.case(
        (kept, "kept"),
        (PromiseToPay.due_on < today, "broken"),
        else_="open",
    )
    return sa.select(
        PromiseToPay.id,
        PromiseToPay.case_id,
        PromiseToPay.recorded_by_id,
        PromiseToPay.amount_cents,
        PromiseToPay.due_on,
        made_on.label("made_on"),
        outcome.label("outcome"),
    ).subquery("promise_outcomes")


def _staff(session: Session, user_ids: list[int] | None) -> list[User]:
    query = sa.select(User).where(User.role.in_(("collector", "supervisor"))).order_by(User.email)
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
    return list(session.scalars(query))


def _collected_by_assignee(
    session: Session, since: dt.date, user_ids, client_ids: list[int] | None
) -> dict[int, int]:
    query = (
        sa.select(Case.assigned_to_id, cents_sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(
            LedgerEntry.kind.in_(MONEY_KINDS),
            LedgerEntry.received_at >= since,
            Case.assigned_to_id.in_(user_ids),
        )
        .group_by(Case.assigned_to_id)
    )
    if client_ids is not None:
        query = query.where(Case.client_id.in_(client_ids))
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
    start = dt.datetime.combine(since, dt.time(0), tzinfo=zone)
    out = {u.id: CollectorRow(u.email) for u in _staff(session, None)}
    for user_id, count in session.execute(
        sa.select(Contact.user_id, sa.func.count())
        .where(Contact.occurred_at >= start, Contact.user_id.in_(out))
        .group_by(Contact.user_id)
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


def _month_index(year, month) -> sa.ColumnElement[int]:
    return sa.cast(year, sa.Integer) * 12 + sa.cast(month, sa.Integer)


def vintages(
    session: Session, last: Month, *, count: int = 12, client_ids: list[int] | None = None
) -> list[Vintage]:
    """Liquidation by placement month: for each of the `count` months to `last`, the amount
    placed on the cases referred that month and the cumulative amount collected on them (by the
    agency and directly, net of reversals) by months since placement, to `last`."""
    span = months(last, count)
    placed_index = _month_index(
        sa.extract("year", Case.referred_on), sa.extract("month", Case.referred_on)
    )
    in_span = Case.referred_on.between(span[0].start, last.end)
    scope = [in_span] + ([Case.client_id.in_(client_ids)] if client_ids is not None else [])
    placed = {
        index: (cases, amount)
        for index, cases, amount in session.execute(
            sa.select(
                placed_index,
                sa.func.count(sa.distinct(Case.id)),
                cents_sum(
                    sa.case((LedgerEntry.kind == "placement", LedgerEntry.amount_cents), else_=0)
                ),
            )
            .select_from(Case)
            .outerjoin(LedgerEntry, LedgerEntry.case_id == Case.id)
            .where(*scope)
            .group_by(placed_index)
        )
    }
    paid_index = _month_index(
        sa.extract("year", LedgerEntry.received_at), sa.extract("month", LedgerEntry.received_at)
    )
    age = paid_index - placed_index
    collected: dict[int, dict[int, int]] = {}
    for index, months_after, amount in session.execute(
        sa.select(placed_index, age, cents_sum(-LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.case_id == Case.id)
        .where(*scope, LedgerEntry.kind.in_(MONEY_KINDS), LedgerEntry.received_at <= last.end)
        .group_by(placed_index, age)
    ):
        by_age = collected.setdefault(int(index), {})
        key = max(int(months_after), 0)  # a direct payment reported for before the referral
        by_age[key] = by_age.get(key, 0) + amount
    out = []
    for month in span:
        index = month.start.year * 12 + month.start.month
        ages = (last.start.year * 12 + last.start.month) - index + 1
        by_age = collected.get(index, {})
        running, cumulative = 0, []
        for a in range(ages):
            running += by_age.get(a, 0)
            cumulative.append(running)
        cases, amount = placed.get(index, (0, 0))
        out.append(Vintage(str(month), cases, amount, cumulative, ages))
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


# --- the client's reports (client_area/report_figures.py), as they were ---
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


def client_aging(session: Session, client_id: int, today: dt.date) -> list[AgeBand]:
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
