"""The collector's queue: which case to work next, and whether it may be called now."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.case import WORKED_STATUSES, Case
from cases.clients import Client
from cases.compliance import DebtorFacts, PastContact, Window, check, window
from cases.contact_log import RULES_LOOK_BACK, facts_of, histories, notice_due_by
from cases.debtors import Address, Debtor, Phone, display_name
from cases.ledger import LedgerEntry, cents_sum
from cases.plans import PromiseToPay

BUCKETS = {
    0: "promise due today",
    1: "broken promise or plan",
    2: "new, awaiting first contact",
    3: "follow up",
}
SITUATION_ORDER = {"juggling": 0, "hardship": 1, "unknown": 2, "avoiding": 3}
# How many more rows than shown are ranked, so callable cases can move ahead of the rest.
LOOKAHEAD = 2
# "Callable now" reads further down the book, a batch at a time, when the top cases may not be
# called at this hour (say, every debtor in the next time zone is still asleep); up to this many,
# this many at a time.
CALLABLE_SCAN = 2_000
CALLABLE_BATCH = 200
# The filters that are buckets, applied in the ranking query itself.
FILTER_BUCKETS = {"new": (2,), "promises": (0, 1)}


@dataclass
class QueueDebtor:
    """A debtor as the queue reads it, from plain columns: what it shows and what the call
    rules need (`facts_of`). Emails are not read: the queue asks only about calls."""

    kind: str
    first_name: str
    last_name: str
    company_name: str
    situation: str
    inconvenient_times: list[dict]
    cease_requested_at: dt.datetime | None
    attorney_since: dt.datetime | None
    addresses: list = field(default_factory=list)  # rows of (postal_code, state)
    phones: list = field(default_factory=list)  # rows of _Phone
    emails: tuple = ()

    @property
    def display_name(self) -> str:
        return display_name(self.kind, self.first_name, self.last_name, self.company_name)


@dataclass
class QueueCase:
    id: int
    reference: str
    status: str
    last_contact_at: dt.datetime | None
    days_past_due_at_referral: int
    client_code: str
    debtor: QueueDebtor
    # For the 5 days to send the validation notice (cases.contact_log.notice_due_by).
    validation_sent_at: dt.datetime | None = None
    first_communication_at: dt.datetime | None = None
    balance_cents: int = 0


@dataclass
class QueueRow:
    case: QueueCase
    bucket: int
    callable_now: bool
    facts: DebtorFacts
    history: list[PastContact]
    call: Window | None = None  # why not, and from when: for the rows shown not callable now

    @property
    def reason(self) -> str:
        return BUCKETS[self.bucket]

    @property
    def balance_cents(self) -> int:
        return self.case.balance_cents

    def score(self, now: dt.datetime) -> float:
        """Within a bucket: longer without contact, bigger balance, older account first."""
        last = self.case.last_contact_at
        idle_days = (now - last).days if last else 365
        age_days = self.case.days_past_due_at_referral
        return idle_days + self.balance_cents / 50_000 + age_days / 30


def ranked_page(
    session: Session,
    collector_id: int,
    today: dt.date,
    buckets: tuple[int, ...] = (),
    exclude: Collection[int] = (),
    *,
    offset: int,
    size: int,
) -> list[sa.Row]:
    """(case id, bucket) of the collector's worked cases in priority order, of the given
    buckets only when some are given, without the cases in `exclude`: the `size` of them
    from `offset` on."""
    params = {
        "collector_id": collector_id,
        "today": today,
        "upto": offset + size,
        "size": size,
        "offset": offset,
    }
    if exclude:
        params["exclude"] = list(exclude)
    return session.execute(_ranking(tuple(buckets), bool(exclude)), params).all()


@functools.cache
def _ranking(buckets: tuple[int, ...], excluding: bool) -> sa.Select:
    """The ranking of `ranked_page` for the given buckets (all when none), leaving out the
    cases in `exclude` when `excluding`: built once for each, its values parameters
    (`collector_id`, `today`, `upto` (offset + size), `size`, `offset` and `exclude`), so a
    page of the queue neither builds it nor walks it for its cache key again.

    The order: the bucket (a promise due today, a broken promise or plan, never contacted or
    still `new`, the rest), then the longest without contact (never first), the oldest
    referral, the id. It is read as ranges, each cut at `upto` rows and merged: the cases with
    a promise or plan to chase (`chase_from <= today`, cases.chase: a short range of
    `ix_cases_chase`, a few hundred cases at most, each told bucket 0 or 1 by a probe of its
    promises due today, then sorted), then three ranges of `ix_cases_queue` in its own order,
    no sort (never contacted; `new` and contacted; the rest), each reading about as many index
    entries as it returns (the `new` and contacted range skips the other contacted cases it
    passes: at worst the book, as the whole sort did).
    """
    collector_id = sa.bindparam("collector_id", type_=sa.Integer)
    today = sa.bindparam("today", type_=sa.Date)
    upto = sa.bindparam("upto", type_=sa.Integer)
    mine = [
        Case.assigned_to_id == collector_id,
        Case.status.in_(WORKED_STATUSES),
        Case.program == "collection",  # an early-out account is never in the queue
    ]
    if excluding:
        mine.append(Case.id.not_in(sa.bindparam("exclude", expanding=True)))
    columns = (Case.id, Case.last_contact_at, Case.referred_on)
    legs = []
    # Buckets 0 and 1: exactly the cases with `chase_from <= today` (cases.chase); a promise
    # due today (probed by case) tells bucket 0 from 1.
    chased = [b for b in (0, 1) if not buckets or b in buckets]
    if chased:
        promise_today = (
            sa.select(PromiseToPay.id)
            .where(
                PromiseToPay.case_id == Case.id,
                PromiseToPay.status == "open",
                PromiseToPay.due_on == today,
            )
            .exists()
        )
        bucket = sa.case((promise_today, 0), else_=1)
        leg = sa.select(columns[0], bucket.label("bucket"), *columns[1:]).where(
            *mine, Case.chase_from <= today
        )
        if len(chased) == 1:
            leg = leg.where(promise_today if chased == [0] else ~promise_today)
        order = (bucket, Case.last_contact_at.asc().nulls_first(), Case.referred_on.asc(), Case.id)
        legs.append(sa.select(leg.order_by(*order).limit(upto).subquery()))
    # The other buckets' cases are told by the column alone, which `ix_cases_queue` covers
    # (no probe, no table read). (bucket, what puts a case in this range and in no other; each
    # range in the merged order within it, as the index reads it: ascending, no NULLS FIRST.)
    unflagged = sa.or_(Case.chase_from.is_(None), Case.chase_from > today)
    contacted = (Case.last_contact_at.asc(), Case.referred_on.asc(), Case.id)
    ranges = [
        (2, [Case.last_contact_at.is_(None), unflagged]),  # all NULL: by referral
        (2, [Case.last_contact_at.is_not(None), Case.status == "new", unflagged]),
        (3, [Case.last_contact_at.is_not(None), Case.status != "new", unflagged]),
    ]
    legs += [
        sa.select(
            sa.select(columns[0], sa.literal(bucket, sa.Integer).label("bucket"), *columns[1:])
            .where(*mine, *where)
            .order_by(*contacted)
            .limit(upto)
            .subquery()
        )
        for bucket, where in ranges
        if not buckets or bucket in buckets
    ]
    merged = sa.union_all(*legs).subquery()
    return (
        sa.select(merged.c.id, merged.c.bucket)
        .order_by(
            merged.c.bucket,
            merged.c.last_contact_at.asc().nulls_first(),
            merged.c.referred_on.asc(),
            merged.c.id,
        )
        .limit(sa.bindparam("size", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
    )


@functools.cache
def _candidates_query() -> sa.Select:
    """`_candidates`' query, built once (`case_ids` bound)."""
    balance = (
        sa.select(cents_sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.case_id == Case.id)
        .scalar_subquery()
    )
    return (
        sa.select(
            Case.id,
            Case.reference,
            Case.status,
            Case.last_contact_at,
            Case.days_past_due_at_referral,
            Client.code,
            Case.validation_sent_at,
            Case.first_communication_at,
            balance,
            Case.debtor_id,
            Debtor.kind,
            Debtor.first_name,
            Debtor.last_name,
            Debtor.company_name,
            Debtor.situation,
            Debtor.inconvenient_times,
            Debtor.cease_requested_at,
            Debtor.attorney_since,
            Address.id,
            Address.postal_code,
            Address.state,
            Phone.id,
            Phone.number,
            Phone.texts_opted_out_at,
            Phone.calls_opted_out_at,
            Phone.type,
            Phone.wrong_number_at,
        )
        .join(Debtor, Debtor.id == Case.debtor_id)
        .join(Client, Client.id == Case.client_id)
        .outerjoin(Address, Address.debtor_id == Case.debtor_id)
        .outerjoin(Phone, Phone.debtor_id == Case.debtor_id)
        .where(Case.id.in_(sa.bindparam("case_ids", expanding=True)))
        .order_by(Case.id, Address.id, Phone.id)
    )


def _candidates(session: Session, case_ids: list[int]) -> dict[int, QueueCase]:
    """The ranked cases' columns, balances, and their debtors' addresses and phones, in one
    query of plain rows (loading ORM objects for them cost more than ranking the whole book):
    a case comes once for each of its debtor's addresses and phones (a debtor has one or two
    of each), the balance with it."""
    rows = session.execute(_candidates_query(), {"case_ids": case_ids})
    found: dict[int, QueueCase] = {}
    debtors: dict[int, QueueDebtor] = {}
    seen: set[tuple[str, int]] = set()  # the addresses and phones already added
    for row in rows:
        case_id, debtor_id, address_id, phone_id = row[0], row[9], row[18], row[21]
        debtor = debtors.get(debtor_id)
        if debtor is None:
            debtor = debtors[debtor_id] = QueueDebtor(*row[10:18])
        if case_id not in found:
            found[case_id] = QueueCase(*row[:6], debtor, row[6], row[7], row[8])
        if address_id is not None and ("a", address_id) not in seen:
            seen.add(("a", address_id))
            debtor.addresses.append(_Address(*row[19:21]))
        if phone_id is not None and ("p", phone_id) not in seen:
            seen.add(("p", phone_id))
            debtor.phones.append(_Phone(*row[22:27]))
    return found


class _Address(NamedTuple):
    postal_code: str
    state: str


class _Phone(NamedTuple):
    number: str
    texts_opted_out_at: dt.datetime | None
    calls_opted_out_at: dt.datetime | None
    type: str
    wrong_number_at: dt.datetime | None


def queue_for(
    session: Session,
    collector_id: int,
    *,
    now: dt.datetime,
    today: dt.date,
    limit: int = 50,
    only: str = "",
    exclude: Collection[int] = (),
) -> list[QueueRow]:
    """The collector's open cases in priority order, those callable now first. `only` is
    "callable", "new" or "promises" (or nothing: all); the cases in `exclude` are left out
    (what "next case" holds back: cases.queue_holds)."""
    buckets = FILTER_BUCKETS.get(only, ())
    batch = limit * LOOKAHEAD
    end = batch
    if only == "callable":
        batch, end = max(batch, CALLABLE_BATCH), CALLABLE_SCAN
    rows: list[QueueRow] = []
    for offset in range(0, end, batch):
        ranked_ids = ranked_page(
            session, collector_id, today, buckets, exclude, offset=offset, size=batch
        )
        found = _rows(session, ranked_ids, now)
        rows += [r for r in found if r.callable_now] if only == "callable" else found
        if len(ranked_ids) < batch or len(rows) >= limit:
            break
    # Among the candidates: callable first, then the bucket, then the debtor's situation
    # (someone juggling payments is worth a call soon, someone in hardship needs a plan
    # conversation, someone avoiding us goes last), then the score.
    rows.sort(
        key=lambda r: (
            not r.callable_now,
            r.bucket,
            SITUATION_ORDER.get(r.case.debtor.situation, 2),
            -r.score(now),
        )
    )
    shown = rows[:limit]
    for row in shown:
        if not row.callable_now:  # why not, and from when
            row.call = window(row.facts, row.history, "call", now)
    return shown


def _rows(session: Session, ranked_ids: list, now: dt.datetime) -> list[QueueRow]:
    """The ranked cases as queue rows, each checked against the call rules now."""
    ids = [case_id for case_id, _ in ranked_ids]
    if not ids:
        return []
    cases = _candidates(session, ids)
    past = histories(session, ids, since=now - RULES_LOOK_BACK)
    rows = []
    for case_id, bucket in ranked_ids:
        case = cases[case_id]
        facts = facts_of(
            case.debtor, disputed=case.status == "disputed", notice_due_by=notice_due_by(case)
        )
        history = past.get(case_id, [])
        callable_now = not check(facts, history, "call", now)
        rows.append(QueueRow(case, bucket, callable_now, facts, history))
    return rows
