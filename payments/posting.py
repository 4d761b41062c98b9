"""Posting money to the ledger: payments, direct payments, reversals, with the agency's fee."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from cases import audit, report_totals, stamps
from cases.case import Case, change_status
from cases.debtors import takes_email
from cases.early_out import fee_bps_for as early_out_fee_bps
from cases.jobs import declare, enqueue
from cases.ledger import (
    KINDS,
    METHODS,
    PLACEMENT_COMPONENTS,
    DuplicatePosting,
    LedgerEntry,
    LedgerError,
    amount_text,
    balance_cents,
    balances,
    cents_sum,
    post_placement,
)
from cases.model import new_stamp
from cases.offers import (
    SettlementOffer,
    accepted_offer,
    has_accepted_offer,
    mark_paid,
    paid_toward,
)
from cases.plans import IN_FORCE, PaymentPlan, has_plan_in_force, settle_plan_of_case, settle_plans
from payments.fees import fee_cents, rate_in_force

# The "settled in full" letter, written by correspondence.settlement_letters.
SETTLED_LETTER = declare("letters.settled", queue="mail")

__all__ = [
    "KINDS",
    "ReceivedDateError",
    "check_dated_for_case",
    "check_received_at",
    "METHODS",
    "PLACEMENT_COMPONENTS",
    "Arrived",
    "DuplicatePosting",
    "LedgerEntry",
    "LedgerError",
    "balance_cents",
    "balances",
    "instrument_id",
    "post_instrument",
    "receipt_number",
    "client_external_id",
    "unmatched_external_id",
    "new_external_id",
    "post_adjustment",
    "post_arrived",
    "post_payment",
    "post_placement",
    "post_settlement_writeoff",
    "reverse_payment",
    "reverse_to_total",
]


# In session.info: the cases locked in this transaction, by id (held here, or the identity
# map, which holds objects weakly, could let one go and read it again).
_LOCKED = "recourse.posting.locked_cases"


def lock_case(session: Session, case: Case) -> None:
    """Serialise money movements on one case: a row lock on PostgreSQL (SQLite's write lock
    already admits one writer at a time). The case is read again under the lock, so a status
    another transaction just committed (settled, paid) is the one decided on. A case this
    transaction holds locked already is not read again: nobody else can have changed it."""
    locked_case(session, case.id)


def locked_case(session: Session, case_id: int) -> Case:
    """The case, locked and read under its lock (one statement; none when it is held already)."""
    held = session.info.get(_LOCKED, {}).get(case_id)
    if held is not None:
        return held
    case = session.scalars(_LOCK_BY_ID, {"case_id": case_id}).one()
    session.info.setdefault(_LOCKED, {})[case.id] = case
    return case


def lock_case_by_reference(session: Session, reference: str) -> tuple[Case | None, bool]:
    """The case of this reference locked and read under its lock (None when no case has it),
    and whether its debtor has an email address open to us (for a receipt): one statement."""
    row = locked_by_reference(session, _LOCK_BY_REFERENCE, {"reference": reference})
    return (None, False) if row is None else (row[0], bool(row[1]))


def locking_by_reference(*also: sa.ColumnElement) -> sa.Select:
    """The statement of `lock_case_by_reference` (bound: `reference`), reading `also` besides
    in the same statement (build it once; run it with `locked_by_reference`)."""
    return (
        sa.select(Case, takes_email(Case.debtor_id), *also)
        .where(Case.reference == sa.bindparam("reference"))
        .with_for_update(of=Case)
        .execution_options(populate_existing=True)
    )


def locked_by_reference(session: Session, statement: sa.Select, params: dict) -> sa.Row | None:
    """The row of a `locking_by_reference` statement (the case, whether its debtor takes
    email, what else it reads), None when no case has the reference; the case is held locked
    for the rest of the transaction (not locked again)."""
    row = session.execute(statement, params).one_or_none()
    if row is not None:
        session.info.setdefault(_LOCKED, {})[row[0].id] = row[0]
    return row


# Built once: a statement's construction costs more CPU than its round trip to the database.
_LOCK_BY_ID = (
    sa.select(Case)
    .where(Case.id == sa.bindparam("case_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_BY_REFERENCE = locking_by_reference()


@event.listens_for(Session, "after_soft_rollback")
def _forget_locks_rolled_back(session: Session, _previous_transaction) -> None:
    # Rolling back to a savepoint releases the locks taken inside it: take them again.
    session.info.pop(_LOCKED, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction) -> None:
    if transaction.parent is None:  # committed or rolled back: every lock is released
        session.info.pop(_LOCKED, None)


@dataclass(frozen=True)
class _Facts:
    """What a posting decides on, read under the case's lock in one statement."""

    balance_cents: int
    posted: bool  # the external id is in the ledger already
    reversed_cents: int  # of the payment being reversed (0 for a payment)
    fee_bps: int  # the client's rate in force for the case
    plan_in_force: bool
    accepted_offer: bool


def _facts(
    session: Session, case: Case, external_id: str, reverses: LedgerEntry | None = None
) -> _Facts:
    balance, posted_, reversed_, bps, plan, offer = session.execute(
        _FACTS,
        {
            "case_id": case.id,
            "external_id": external_id,
            "reverses_id": reverses.id if reverses is not None else None,
            "client_id": case.client_id,
            "days_past_due": case.days_past_due_at_referral,
            "in_legal": bool(case.in_legal),
        },
    ).one()
    return _Facts(int(balance), bool(posted_), int(reversed_), int(bps), bool(plan), bool(offer))


def _build_facts() -> sa.Select:
    entries, case_id = LedgerEntry, sa.bindparam("case_id")
    return sa.select(
        sa.select(cents_sum(entries.amount_cents))
        .where(entries.case_id == case_id)
        .scalar_subquery(),
        sa.exists().where(entries.external_id == sa.bindparam("external_id")),
        sa.select(cents_sum(entries.amount_cents))  # 0 when reverses_id is NULL (a payment)
        .where(entries.reverses_id == sa.bindparam("reverses_id", type_=sa.Integer))
        .scalar_subquery(),
        rate_in_force(
            sa.bindparam("client_id", type_=sa.Integer),
            sa.bindparam("days_past_due", type_=sa.Integer),
            sa.bindparam("in_legal", type_=sa.Boolean),
        ),
        has_plan_in_force(case_id),
        has_accepted_offer(case_id),
    )


_FACTS = _build_facts()


def _insert_once(session: Session, entry: LedgerEntry, audited: dict | None = None) -> LedgerEntry:
    """Insert an entry once (`INSERT … ON CONFLICT (external_id) DO NOTHING RETURNING id`: no
    savepoint, no flush), with its audit row (`audited`: `audit.values(…)`); a racing
    duplicate of its external id is refused, not a crash, with nothing written. What the flush
    hooks would have kept for a flushed entry is kept here, with the row known: the reports'
    running totals and the case's portal page stamp. On PostgreSQL all of it is one statement
    (a data-modifying CTE); on SQLite, which has none, one statement each."""
    row = _row_of(entry)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = _insert_entry_kept(audited is not None)
        # Named apart from every column: an UPDATE would take a column's name as its SET.
        bound = {f"e_{name}": value for name, value in row.items()}
        bound |= {"case_stamp": new_stamp(), **(audited or {})}
        entry_id = session.execute(statement, bound).scalar()
    else:
        entry_id = session.execute(_INSERT_ENTRY_SQLITE, row).scalar()
    if entry_id is None:
        raise DuplicatePosting(f"{entry.external_id} was already posted")
    for name, value in row.items():
        setattr(entry, name, value)
    entry.id = entry_id
    make_transient_to_detached(entry)  # in the session as the row it is now: nothing to flush
    session.add(entry)
    if dialect != "postgresql":
        report_totals.entries_added(session, [entry])
        if audited is not None:
            audit.insert_rows(
                session, [audit.about(audited, "ledger_entry", entry.id, entry.case_id)]
            )
        stamps.note(session, case_ids=[entry.case_id])
    return entry


_ENTRY_COLUMNS = [c for c in LedgerEntry.__table__.columns if not c.primary_key]


def _row_of(entry: LedgerEntry) -> dict:
    """The entry's column values, its columns' defaults where it has none."""
    row = {}
    for column in _ENTRY_COLUMNS:
        value = getattr(entry, column.key)
        if value is None and column.default is not None:
            arg = column.default.arg
            value = arg(None) if column.default.is_callable else arg
        row[column.key] = value
    return row


def _insert_entry(insert, prefix: str = "") -> sa.Insert:
    return (
        insert(LedgerEntry.__table__)
        .values({c.key: sa.bindparam(prefix + c.key, type_=c.type) for c in _ENTRY_COLUMNS})
        .on_conflict_do_nothing(index_elements=["external_id"])
    )


# Built once: a statement's construction costs more CPU than its round trip to the database.
_INSERT_ENTRY_SQLITE = _insert_entry(sqlite.insert).returning(LedgerEntry.__table__.c.id)
_KEPT: dict[bool, sa.Select] = {}


def _insert_entry_kept(audited: bool) -> sa.Select:
    """PostgreSQL's one statement: the entry inserted once, and with it (from its RETURNING:
    nothing when the external id was taken) the reports' totals, its audit row if `audited`,
    and its case's new page stamp; it returns the entry's id. Built once."""
    if audited not in _KEPT:
        table = LedgerEntry.__table__
        read = ("id", "case_id", "kind", "amount_cents", "fee_cents", "received_at", "reverses_id")
        entry = _insert_entry(postgresql.insert, "e_").returning(*(table.c[n] for n in read))
        entry = entry.cte("e")
        parts = report_totals.with_new_entry(entry)
        if audited:
            audited_ = audit.insert_from("ledger_entry", entry.c.id, entry.c.case_id)
            parts.append(audited_.cte("audit_events_"))
        parts.append(stamps.restamp(sa.select(entry.c.case_id)).cte("cases_"))
        _KEPT[audited] = sa.select(entry.c.id).add_cte(*parts)
    return _KEPT[audited]


class ReceivedDateError(LedgerError):
    """The date a payment was received is not one it can have been received on."""


def check_received_at(received_at: dt.date, today: dt.date | None = None) -> None:
    """Money cannot arrive after today. `today` is the agency's day; without it, UTC's date
    (never earlier than the day in any US time zone) bounds it."""
    if not isinstance(received_at, dt.date):
        raise ReceivedDateError("the date received must be a date")
    if received_at > (today or dt.datetime.now(dt.UTC).date()):
        raise ReceivedDateError("the date received cannot be in the future")


def check_dated_for_case(case: Case, received_at: dt.date, *, direct: bool = False) -> None:
    """Money moves on a case from its referral date on; a client's direct payment may be for
    the time before referral, but never before the itemisation date."""
    if direct:
        if received_at < case.itemization_date:
            raise ReceivedDateError(
                "a direct payment cannot be dated before the itemisation date "
                f"({case.itemization_date.isoformat()})"
            )
    elif received_at < case.referred_on:
        raise ReceivedDateError(
            "the date received cannot be before the case was referred "
            f"({case.referred_on.isoformat()})"
        )


def posted(session: Session, external_id: str) -> LedgerEntry | None:
    return session.scalar(sa.select(LedgerEntry).where(LedgerEntry.external_id == external_id))


def post_payment(
    session: Session,
    case: Case,
    amount_cents: int,
    *,
    external_id: str,
    received_at: dt.date,
    method: str,
    actor: audit.Actor,
    direct: bool = False,
    memo: str | None = None,
    allow_overpayment: bool = False,
    today: dt.date | None = None,
) -> LedgerEntry:
    """Apply a payment received by the agency (or, `direct`, by the client) to a case.

    The fee is the client's tier rate for the case, fixed on the entry now. A payment dated
    after `today` (the agency's day), or before the case's referral date (a `direct` one:
    before its itemisation date), is refused. Money that already arrived (a card payment
    Stripe confirmed, dated by Stripe's clock; money held unmatched, checked when it was
    held) is never refused for exceeding the balance or for its date: `allow_overpayment`
    posts it and leaves a credit to refund.
    """
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise LedgerError("a payment amount must be a positive number of cents")
    if method not in METHODS:
        raise LedgerError(f"method must be one of: {', '.join(METHODS)}")
    if not external_id or not external_id.strip():
        raise LedgerError("a payment needs its external id (check number, transaction id…)")
    if not allow_overpayment:
        check_received_at(received_at, today)
        check_dated_for_case(case, received_at, direct=direct)
    external_id = external_id.strip()[:120]
    lock_case(session, case)
    facts = _facts(session, case, external_id)
    if facts.posted:
        raise DuplicatePosting(f"{external_id} was already posted")
    owed = facts.balance_cents
    if amount_cents > owed and not allow_overpayment:
        raise LedgerError(
            f"the payment ({amount_text(amount_cents)}) is more than the balance ({amount_text(owed)})"
        )
    bps = facts.fee_bps
    if case.program == "early_out":  # the client's early-out fee, not collection terms
        bps = early_out_fee_bps(session, case)
    entry = _insert_once(
        session,
        LedgerEntry(
            case_id=case.id,
            kind="direct_payment" if direct else "payment",
            amount_cents=-amount_cents,
            fee_bps=bps,
            fee_cents=fee_cents(amount_cents, bps),
            external_id=external_id,
            method=method,
            received_at=received_at,
            memo=memo,
            recorded_by_id=actor.user_id,
        ),
        audit.values(
            actor,
            "direct_payment.posted" if direct else "payment.posted",
            amount_cents=amount_cents,
            external_id=external_id,
        ),
    )
    # Every payment, by any route, counts toward the plan in force before the case may end.
    if facts.plan_in_force:
        settle_plan_of_case(session, case, actor=actor)
    if facts.accepted_offer and settle_if_offer_paid(
        session, case, received_at=received_at, actor=actor
    ):
        return entry
    if owed - amount_cents <= 0 and case.status in ("new", "active", "plan", "disputed"):
        change_status(session, case, "paid", actor=actor, reason="balance paid in full")
    return entry


@dataclass(frozen=True)
class Arrived:
    """A payment that already arrived (a card payment Stripe confirmed) to post on a case."""

    case_id: int
    amount_cents: int
    external_id: str
    received_at: dt.date


def post_arrived(
    session: Session,
    payments: list[Arrived],
    *,
    method: str,
    actor: audit.Actor,
    memo: str | None = None,
) -> list[tuple[LedgerEntry | None, bool]]:
    """Post several payments that already arrived, each as `post_payment(...,
    allow_overpayment=True)` posts it, in a few statements for them all: the cases locked and
    read in one (in id order), what each posting decides on in one, the entries in one INSERT,
    the reports' totals in theirs, the audit events in one INSERT, what each plan in force
    received in one. What follows a posting (its plan counts it, an accepted offer paid
    settles the case, a balance paid ends it) follows it as in `post_payment`. Two payments on
    one case are posted one after the other (in rounds). For each payment: its entry (None
    when its external id is posted already) and whether its debtor takes email (a receipt)."""
    for payment in payments:
        amount = payment.amount_cents
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise LedgerError("a payment amount must be a positive number of cents")
        if not payment.external_id or not payment.external_id.strip():
            raise LedgerError("a payment needs its external id (check number, transaction id…)")
    if method not in METHODS:
        raise LedgerError(f"method must be one of: {', '.join(METHODS)}")
    emailable = _lock_cases(session, sorted({p.case_id for p in payments}))
    entries: dict[int, LedgerEntry | None] = {}
    rest = list(enumerate(payments))
    while rest:
        # One payment a case and an external id a round: a second one with the same id then
        # meets the first in the ledger (a duplicate, nothing posted), as post_payment would.
        now, later, cases, ids = [], [], set(), set()
        for n, payment in rest:
            external_id = payment.external_id.strip()[:120]
            again = payment.case_id in cases or external_id in ids
            (later if again else now).append((n, payment))
            cases.add(payment.case_id)
            ids.add(external_id)
        entries.update(_post_round(session, now, method=method, actor=actor, memo=memo))
        rest = later
    return [(entries[n], emailable[p.case_id]) for n, p in enumerate(payments)]


def _lock_cases(session: Session, case_ids: list[int]) -> dict[int, bool]:
    """`locked_case` for several cases in one statement (in id order, so that two runs never
    wait on each other), and whether each one's debtor takes email."""
    held = session.info.setdefault(_LOCKED, {})
    emailable = {}
    new = [case_id for case_id in case_ids if case_id not in held]
    if new:
        for case, takes in session.execute(_LOCK_MANY, {"case_ids": new}):
            held[case.id] = case
            emailable[case.id] = bool(takes)
    if len(emailable) < len(new):
        raise LedgerError(f"no case {sorted(set(new) - set(emailable))}")
    if len(emailable) < len(case_ids):
        emailable.update(
            session.execute(_TAKES_EMAIL, {"case_ids": [i for i in case_ids if i in held]}).all()
        )
    return emailable


def _post_round(
    session: Session,
    payments: list[tuple[int, Arrived]],
    *,
    method: str,
    actor: audit.Actor,
    memo: str | None,
) -> dict[int, LedgerEntry | None]:
    """`post_arrived`'s payments on different cases."""
    held = session.info[_LOCKED]
    facts = {
        row.id: row
        for row in session.execute(_FACTS_OF_CASES, {"case_ids": [p.case_id for _, p in payments]})
    }
    rows = []
    for _, payment in payments:
        case = held[payment.case_id]
        bps = int(facts[case.id].fee_bps)
        if case.program == "early_out":  # the client's early-out fee, not collection terms
            bps = early_out_fee_bps(session, case)
        entry = LedgerEntry(
            case_id=case.id,
            kind="payment",
            amount_cents=-payment.amount_cents,
            fee_bps=bps,
            fee_cents=fee_cents(payment.amount_cents, bps),
            external_id=payment.external_id.strip()[:120],
            method=method,
            received_at=payment.received_at,
            memo=memo,
            recorded_by_id=actor.user_id,
        )
        rows.append(_row_of(entry))
    table = LedgerEntry.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    ids = dict(
        session.execute(
            insert(table)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["external_id"])
            .returning(table.c.external_id, table.c.id)
        ).all()
    )
    entries, posted_, events = {}, [], []
    for (n, payment), row in zip(payments, rows, strict=True):
        if row["external_id"] not in ids:
            entries[n] = None  # posted already (a duplicate): nothing follows
            continue
        entry = LedgerEntry(**row)
        entry.id = ids[row["external_id"]]
        make_transient_to_detached(entry)  # in the session as the row it is now
        session.add(entry)
        entries[n] = entry
        posted_.append(entry)
        events.append(
            audit.row(
                actor,
                "ledger_entry",
                entry.id,
                "payment.posted",
                case_id=entry.case_id,
                amount_cents=payment.amount_cents,
                external_id=entry.external_id,
            )
        )
    if not posted_:
        return entries
    report_totals.entries_added(session, posted_)
    stamps.note(session, case_ids=[e.case_id for e in posted_])
    audit.insert_rows(session, events)
    # What follows each posting, as in post_payment: the plan in force counts it...
    in_force = [facts[e.case_id].plan_id for e in posted_]
    settle_plans(
        session, [session.get(PaymentPlan, i) for i in in_force if i is not None], actor=actor
    )
    for entry in posted_:
        case, fact = held[entry.case_id], facts[entry.case_id]
        # ...a paid settlement settles the case, a balance paid ends it.
        if fact.accepted_offer and settle_if_offer_paid(
            session, case, received_at=entry.received_at, actor=actor
        ):
            continue
        if int(fact.balance) + entry.amount_cents <= 0 and case.status in (
            "new",
            "active",
            "plan",
            "disputed",
        ):
            change_status(session, case, "paid", actor=actor, reason="balance paid in full")
    return entries


def _build_facts_of_cases() -> sa.Select:
    """`_facts` of several locked cases, for payments (each case's own columns in the rate)."""
    entries = LedgerEntry
    return sa.select(
        Case.id,
        sa.select(cents_sum(entries.amount_cents))
        .where(entries.case_id == Case.id)
        .scalar_subquery()
        .label("balance"),
        rate_in_force(Case.client_id, Case.days_past_due_at_referral, Case.in_legal).label(
            "fee_bps"
        ),
        # The plan in force (the latest, as `active_plan` finds it): None without one.
        sa.select(PaymentPlan.id)
        .where(PaymentPlan.case_id == Case.id, PaymentPlan.status.in_(IN_FORCE))
        .order_by(PaymentPlan.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("plan_id"),
        has_accepted_offer(Case.id).label("accepted_offer"),
    ).where(Case.id.in_(sa.bindparam("case_ids", expanding=True)))


_FACTS_OF_CASES = _build_facts_of_cases()
_LOCK_MANY = (
    sa.select(Case, takes_email(Case.debtor_id))
    .where(Case.id.in_(sa.bindparam("case_ids", expanding=True)))
    .order_by(Case.id)
    .with_for_update(of=Case)
    .execution_options(populate_existing=True)
)
_TAKES_EMAIL = sa.select(Case.id, takes_email(Case.debtor_id)).where(
    Case.id.in_(sa.bindparam("case_ids", expanding=True))
)


def settle_if_offer_paid(
    session: Session, case: Case, *, received_at: dt.date, actor: audit.Actor
) -> bool:
    """Once the payments toward an accepted offer reach its amount, the offer is paid, the
    rest of the balance is written off and the case is settled. Call under the case lock.
    True when the case was settled."""
    offer = accepted_offer(session, case.id)
    if offer is None or offer.expires_on < received_at:  # too late: the offer has lapsed
        return False
    if paid_toward(session, offer) < offer.amount_cents:
        return False
    mark_paid(session, offer, actor=actor)
    rest = balance_cents(session, case.id)
    if rest <= 0:
        return False  # paid in full after all: the case is paid, not settled
    post_settlement_writeoff(session, case, offer, received_at=received_at, actor=actor)
    if case.status in ("new", "active", "plan", "disputed"):
        change_status(
            session,
            case,
            "settled",
            actor=actor,
            reason=f"settlement offer {offer.id} paid; the rest written off",
        )
    enqueue(session, SETTLED_LETTER, offer.id)
    return True


def post_settlement_writeoff(
    session: Session,
    case: Case,
    offer: SettlementOffer,
    *,
    received_at: dt.date,
    actor: audit.Actor,
) -> LedgerEntry:
    """Write off what is left of the balance once a settlement is paid: no fee is earned on
    it, and one offer writes off once (its external id)."""
    lock_case(session, case)
    rest = balance_cents(session, case.id)
    if rest <= 0:
        raise LedgerError("there is nothing left to write off")
    entry = _insert_once(
        session,
        LedgerEntry(
            case_id=case.id,
            kind="settlement_writeoff",
            amount_cents=-rest,
            fee_bps=0,
            fee_cents=0,
            external_id=f"settlement:{offer.id}",
            received_at=received_at,
            memo=f"settlement offer {offer.id} paid",
            recorded_by_id=actor.user_id,
        ),
        audit.values(
            actor,
            "settlement_writeoff.posted",
            amount_cents=rest,
            offer_id=offer.id,
        ),
    )
    return entry


def reversed_so_far(session: Session, payment: LedgerEntry) -> int:
    return session.scalar(
        sa.select(cents_sum(LedgerEntry.amount_cents)).where(LedgerEntry.reverses_id == payment.id)
    )


def reverse_payment(
    session: Session,
    payment: LedgerEntry,
    *,
    amount_cents: int | None,
    external_id: str,
    received_at: dt.date,
    reason: str,
    actor: audit.Actor,
    today: dt.date | None = None,
) -> LedgerEntry:
    """Reverse all or part of a payment (a refund, a chargeback, a bounced check), dated
    `received_at`, never after `today` (the agency's day).

    The fee goes back in proportion, computed so that reversals of a whole payment give back
    exactly the fee it earned. A paid or settled case whose balance reopens becomes active.
    """
    entry = _reverse(
        session,
        payment,
        lambda paid, before: paid - before if amount_cents is None else amount_cents,
        external_id=external_id,
        received_at=received_at,
        reason=reason,
        actor=actor,
        today=today,
    )
    assert entry is not None  # an amount that is not positive was refused
    return entry


def reverse_to_total(
    session: Session,
    payment: LedgerEntry,
    total_cents: int,
    *,
    external_id: str,
    received_at: dt.date,
    reason: str,
    actor: audit.Actor,
) -> LedgerEntry | None:
    """Reverse what of `total_cents` (a running total reversed, as Stripe's refunded amount of
    a charge) is not reversed yet: the difference is worked out under the case's lock, so two
    totals applied at once reverse the larger one once. None when nothing new is reversed."""
    return _reverse(
        session,
        payment,
        lambda _paid, before: total_cents - before if total_cents > before else None,
        external_id=external_id,
        received_at=received_at,
        reason=reason,
        actor=actor,
    )


def _reverse(
    session: Session,
    payment: LedgerEntry,
    amount_of,
    *,
    external_id: str,
    received_at: dt.date,
    reason: str,
    actor: audit.Actor,
    today: dt.date | None = None,
) -> LedgerEntry | None:
    if payment.kind not in ("payment", "direct_payment"):
        raise LedgerError("only payments can be reversed")
    if not reason or not reason.strip():
        raise LedgerError("say why the payment is reversed")
    check_received_at(received_at, today)
    case = locked_case(session, payment.case_id)
    facts = _facts(session, case, external_id, reverses=payment)
    paid = -payment.amount_cents
    before = facts.reversed_cents
    amount = amount_of(paid, before)
    if amount is None:
        return None
    if not isinstance(amount, int) or amount <= 0:
        raise LedgerError("a reversal amount must be a positive number of cents")
    if before + amount > paid:
        raise LedgerError(f"only {amount_text(paid - before)} of this payment is left to reverse")
    if facts.posted:
        raise DuplicatePosting(f"{external_id} was already posted")
    fee_back = fee_cents(before + amount, payment.fee_bps) - fee_cents(before, payment.fee_bps)
    entry = _insert_once(
        session,
        LedgerEntry(
            case_id=case.id,
            kind="reversal",
            amount_cents=amount,
            fee_bps=payment.fee_bps,
            fee_cents=-fee_back,
            external_id=external_id,
            method=payment.method,
            received_at=received_at,
            reverses_id=payment.id,
            memo=reason.strip()[:500],
            recorded_by_id=actor.user_id,
        ),
        audit.values(
            actor,
            "reversal.posted",
            reason=reason.strip(),
            amount_cents=amount,
            reverses=payment.external_id,
        ),
    )
    if facts.plan_in_force:  # what it no longer covers is unpaid again
        settle_plan_of_case(session, case, actor=actor)
    if case.status in ("paid", "settled") and balance_cents(session, case.id) > 0:
        change_status(session, case, "active", actor=actor, reason="a payment was reversed")
    return entry


def post_adjustment(
    session: Session,
    case: Case,
    amount_cents: int,
    *,
    reason: str,
    received_at: dt.date,
    actor: audit.Actor,
) -> LedgerEntry:
    """Correct the balance up (a positive amount) or down (negative), with a reason, dated
    no earlier than the case's referral."""
    if not isinstance(amount_cents, int) or amount_cents == 0:
        raise LedgerError("an adjustment needs a non-zero amount")
    if not reason or not reason.strip():
        raise LedgerError("say why the balance is adjusted")
    check_dated_for_case(case, received_at)
    lock_case(session, case)
    entry = _insert_once(
        session,
        LedgerEntry(
            case_id=case.id,
            kind="adjustment",
            amount_cents=amount_cents,
            external_id=new_external_id("adjustment"),
            received_at=received_at,
            memo=reason.strip()[:500],
            recorded_by_id=actor.user_id,
        ),
        audit.values(
            actor,
            "adjustment.posted",
            reason=reason.strip(),
            amount_cents=amount_cents,
        ),
    )
    return entry


# The external identities of money that arrives outside Stripe, built here and nowhere else.
def instrument_id(method: str, number: str, *, debtor_id: int) -> str:
    """A check, transfer or money order: the same number from the same payer is one payment,
    whichever way it reaches us (the case screen, an unmatched payment matched later, the API)
    and whichever of the debtor's cases it pays."""
    return f"{method}:D{debtor_id}:{number.strip()}"


def unmatched_external_id(method: str, number: str) -> str:
    """Money held before we know whose it is: the instrument's number alone (re-keyed to its
    payer by `post_instrument` when it is matched)."""
    return f"{method}:{number.strip()}"


def receipt_number(today: dt.date) -> str:
    """An agency receipt number for cash (and anything else that came without a number)."""
    return f"R{today:%y%m%d}-{secrets.token_hex(3).upper()}"


def post_instrument(
    session: Session,
    parts: list[tuple[Case, int]],
    *,
    method: str,
    number: str | None,
    received_at: dt.date,
    actor: audit.Actor,
    memo: str | None = None,
    allow_overpayment: bool = False,
    today: dt.date | None = None,
) -> list[LedgerEntry]:
    """Post one instrument that pays one or several of one debtor's cases: once, as one split
    (`parts`: each case with its share, in cents). Its identity is its method, its payer and
    its number: the same check posted again, on any of the debtor's cases and by any path, is
    a DuplicatePosting naming where it went. Cash without a number gets a receipt number."""
    if not parts:
        raise LedgerError("say which case the payment is for")
    if len({case.id for case, _ in parts}) != len(parts):
        raise LedgerError("name each case once in a split")
    debtors = {case.debtor_id for case, _ in parts}
    if len(debtors) != 1:
        raise LedgerError("one payment can be split only across one debtor's cases")
    number = (number or "").strip()
    if not number:
        if method != "cash":
            raise LedgerError("a payment needs its number (check number, transaction id…)")
        number = receipt_number(today or dt.datetime.now(dt.UTC).date())
    identity = instrument_id(method, number, debtor_id=debtors.pop())
    earlier = posted(session, identity)
    if earlier is not None:
        where = session.get(Case, earlier.case_id)
        raise DuplicatePosting(
            f"{method} {number} from this debtor was already posted on {where.reference} "
            f"({earlier.received_at.isoformat()})"
        )
    # Locks are taken case by case in id order, so two splits never wait on each other.
    ordered = sorted(parts, key=lambda part: part[0].id)
    return [
        post_payment(
            session,
            case,
            cents,
            # The first share carries the identity itself: its unique key stops a second
            # posting of the instrument, even one racing this one.
            external_id=identity if n == 0 else f"{identity}@{case.reference}",
            received_at=received_at,
            method=method,
            actor=actor,
            memo=memo
            if len(parts) == 1
            else f"{memo + '; ' if memo else ''}split {n + 1}/{len(parts)}",
            allow_overpayment=allow_overpayment,
            today=today,
        )
        for n, (case, cents) in enumerate(ordered)
    ]


def client_external_id(client_code: str, reference: str) -> str:
    """A client's own payment references live in its own namespace (two clients may both
    have a check number 1001)."""
    return f"direct:{client_code}:{reference.strip()}"


def new_external_id(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"
