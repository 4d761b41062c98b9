"""Promises kept and broken, and which reminders are due: 3 days before a promise or an
installment, the day after a miss, and a monthly statement of balance for the debtors who asked
for one. Each reminder goes out once per channel (a statement, once per month)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, selectinload

from cases import audit, due_indexes  # noqa: F401 - the due rows' indexes, in the metadata
from cases.case import OPEN_STATUSES, Case
from cases.debtors import Debtor
from cases.ledger import LedgerEntry, balances
from cases.model import Base, Timestamped
from cases.plans import Installment, PaymentPlan, PromiseToPay

REMINDER_KINDS = (
    "promise_due",
    "promise_missed",
    "installment_due",
    "installment_missed",
    "balance_statement",
)
STATEMENT = "balance_statement"
# A case still waiting for its validation notice gets none: that notice comes first.
STATEMENT_CASE_STATUSES = ("active", "plan", "disputed")
STATEMENT_MOVEMENTS = ("payment", "direct_payment", "reversal")
# "3 days before": sent on the third day before, or later if the rules kept it back.
DAYS_BEFORE = 3
# A missed payment's reminder is sent from the day after, for as long as this if held back.
MISSED_FOR_DAYS = 7


class SentReminder(Timestamped, Base):
    """One reminder sent on one channel: the unique key makes a second sending impossible."""

    __tablename__ = "sent_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    # kind:id:channel, or for a statement kind:case_id:YYYY-MM:channel
    key: Mapped[str] = mapped_column(sa.String(80), unique=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(10))
    promise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("promises_to_pay.id"))
    installment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("installments.id"))
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbound_messages.id"))


def reminder_key(kind: str, target: int | str, channel: str) -> str:
    return f"{kind}:{target}:{channel}"


def already_sent(session: Session, key: str) -> bool:
    return session.scalar(sa.select(SentReminder.id).where(SentReminder.key == key)) is not None


def sent_keys(session: Session, keys: list[str]) -> set[str]:
    """Those of `keys` already sent: one query for a run's due reminders, by the unique key."""
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        found.update(
            session.scalars(
                sa.select(SentReminder.key).where(SentReminder.key.in_(keys[start : start + 1000]))
            )
        )
    return found


# The due cases' debtors and the contacts a reminder goes to, loaded with the selection (a
# query per relationship, not per case).
WITH_CONTACTS = (
    selectinload(Case.debtor).selectinload(Debtor.emails),
    selectinload(Case.debtor).selectinload(Debtor.phones),
)


def promise_paid_cents(
    session: Session, promise: PromiseToPay, *, today: dt.date, zone: ZoneInfo
) -> int:
    """What was paid on the case (to the agency or directly to the client) from the day the
    promise was made to its due date (or today, if sooner), in the agency's calendar; reversed
    payments do not count."""
    return promises_paid_cents(session, [promise], today=today, zone=zone)[promise.id]


def promises_paid_cents(
    session: Session, promises: list[PromiseToPay], *, today: dt.date, zone: ZoneInfo
) -> dict[int, int]:
    """`promise_paid_cents` of each promise, by id: the payments of their cases read in one
    query (per thousand cases), not one per promise."""
    case_ids = sorted({p.case_id for p in promises})
    reversal = aliased(LedgerEntry)
    payments: dict[int, list[tuple[dt.date, int]]] = {}
    for start in range(0, len(case_ids), 1000):
        rows = session.execute(
            sa.select(LedgerEntry.case_id, LedgerEntry.received_at, -LedgerEntry.amount_cents)
            .where(
                LedgerEntry.case_id.in_(case_ids[start : start + 1000]),
                LedgerEntry.kind.in_(("payment", "direct_payment")),
                LedgerEntry.received_at <= today,
                ~sa.exists().where(reversal.reverses_id == LedgerEntry.id),
            )
            .execution_options(autoflush=False)
        )
        for case_id, received, cents in rows:
            payments.setdefault(case_id, []).append((received, cents))
    paid = {}
    for promise in promises:
        made_on = promise.created_at.astimezone(zone).date()
        until = min(promise.due_on, today)
        paid[promise.id] = sum(
            cents
            for received, cents in payments.get(promise.case_id, [])
            if made_on <= received <= until
        )
    return paid


# A payment makes an open promise worth checking before its due date for this many days after
# it was received; an older one is counted anyway when the promise falls due.
PAID_WITHIN_DAYS = 7


def settleable(today: dt.date) -> list[sa.Select]:
    """The selections of the open promises `check_promises` reads: those past due (the partial
    index ix_promises_to_pay_open_due), and those of a case with a payment or direct payment
    received in the last PAID_WITHIN_DAYS days (found from the ledger's recent payments, by
    its index on received_at). Two queries, each served by its own index."""
    recent_payments = sa.select(LedgerEntry.case_id).where(
        LedgerEntry.kind.in_(("payment", "direct_payment")),
        LedgerEntry.received_at >= today - dt.timedelta(days=PAID_WITHIN_DAYS),
    )
    open_promise = sa.select(PromiseToPay).where(PromiseToPay.status == "open")
    return [
        open_promise.where(PromiseToPay.due_on < today),
        open_promise.where(PromiseToPay.due_on >= today, PromiseToPay.case_id.in_(recent_payments)),
    ]


def check_promises(
    session: Session, *, today: dt.date, zone: ZoneInfo, actor: audit.Actor = audit.SYSTEM
) -> dict[str, list[int]]:
    """Settle every open promise that can be settled: `kept` once the payments reach its
    amount by its due date, `broken` once its due date has passed without them. Audited.

    Only the promises that may settle are read (`settleable`): those past due, and those of a
    case paid in the last PAID_WITHIN_DAYS days; an open promise not yet due on a case with
    no recent payment is not read, however many there are."""
    settled: dict[str, list[int]] = {"kept": [], "broken": []}
    found = {p.id: p for query in settleable(today) for p in session.scalars(query)}
    promises = [found[i] for i in sorted(found)]
    paid_on = promises_paid_cents(session, promises, today=today, zone=zone)
    for promise in promises:
        paid = paid_on[promise.id]
        if paid >= promise.amount_cents:
            status = "kept"
        elif promise.due_on < today:
            status = "broken"
        else:
            continue
        promise.status = status
        settled[status].append(promise.id)
        audit.record(
            session,
            actor,
            "promise",
            promise.id,
            f"promise.{status}",
            case_id=promise.case_id,
            amount_cents=promise.amount_cents,
            paid_cents=paid,
            due_on=promise.due_on.isoformat(),
        )
    session.flush()
    return settled


@dataclass(frozen=True)
class DueReminder:
    kind: str
    case: Case
    amount_cents: int
    due_on: dt.date
    promise: PromiseToPay | None = None
    installment: Installment | None = None
    month: str | None = None  # a statement's month, YYYY-MM

    @property
    def target(self) -> int | str:
        if self.kind == STATEMENT:
            return f"{self.case.id}:{self.month}"
        return self.promise.id if self.promise else self.installment.id


def due_reminders(session: Session, *, today: dt.date, zone: ZoneInfo) -> list[DueReminder]:
    """The reminders that should go out today (each channel is sent once; see SentReminder)."""
    soon = (today + dt.timedelta(days=1), today + dt.timedelta(days=DAYS_BEFORE))
    missed = (today - dt.timedelta(days=MISSED_FOR_DAYS), today - dt.timedelta(days=1))
    found: list[DueReminder] = []
    open_case = Case.status.in_(OPEN_STATUSES)
    rows = session.execute(
        sa.select(PromiseToPay, Case)
        .join(Case, Case.id == PromiseToPay.case_id)
        .where(
            open_case,
            sa.or_(
                sa.and_(PromiseToPay.status == "open", PromiseToPay.due_on.between(*soon)),
                sa.and_(PromiseToPay.status == "broken", PromiseToPay.due_on.between(*missed)),
            ),
        )
        .options(*WITH_CONTACTS)
        .order_by(PromiseToPay.id)
    ).all()
    for promise, case in rows:
        if promise.status == "open":
            if promise.created_at.astimezone(zone).date() >= today:
                continue  # made today: the debtor needs no reminder of it yet
            kind = "promise_due"
        else:
            kind = "promise_missed"
        found.append(DueReminder(kind, case, promise.amount_cents, promise.due_on, promise=promise))
    rows = session.execute(
        sa.select(Installment, Case)
        .join(PaymentPlan, PaymentPlan.id == Installment.plan_id)
        .join(Case, Case.id == PaymentPlan.case_id)
        .where(
            open_case,
            # An early-out plan's payments are asked for in the client's name, on its page
            # (cases.early_out_plans), never in a collection reminder.
            Case.program == "collection",
            # Not a paused plan: nothing of it is due or missed during a dispute hold, nor
            # until the debtor confirms the dates the hold's end moved it to.
            PaymentPlan.status == "active",
            sa.or_(
                sa.and_(Installment.status == "scheduled", Installment.due_on.between(*soon)),
                sa.and_(
                    Installment.status.in_(("scheduled", "failed", "missed")),
                    Installment.due_on.between(*missed),
                ),
            ),
        )
        .options(*WITH_CONTACTS)
        .order_by(Installment.id)
    ).all()
    for installment, case in rows:
        kind = "installment_due" if installment.due_on > today else "installment_missed"
        found.append(
            DueReminder(
                kind, case, installment.amount_cents, installment.due_on, installment=installment
            )
        )
    return found


def statement_keys(case_id, month: str) -> list:
    """The keys a case's statement of the month is sent under (one per channel); `case_id` an
    int or a SQL expression."""
    prefix = f"{STATEMENT}:"
    if isinstance(case_id, int):
        return [f"{prefix}{case_id}:{month}:{channel}" for channel in ("email", "text")]
    text_id = sa.cast(case_id, sa.String)
    return [
        sa.literal(prefix) + text_id + sa.literal(f":{month}:{channel}")
        for channel in ("email", "text")
    ]


def due_statements(session: Session, *, today: dt.date) -> list[DueReminder]:
    """This month's statement of balance for each open case, with something owed, of a debtor
    who asked for one. Due from the 1st (or the day they asked) until sent, once a month.

    Bounded by what is due: the cases are read through the partial index
    ix_cases_statement_due on `Case.statement_month` (the month of the last statement sent, ""
    for none yet), in the range before this month, so a case sent this month is not read. Its
    sent_reminders key of the month is checked as well (NOT EXISTS, one probe per due case), so
    a statement is never sent twice in a month whatever the column says."""
    month = f"{today:%Y-%m}"
    sent = (
        sa.select(SentReminder.id)
        .where(
            SentReminder.case_id == Case.id,
            SentReminder.kind == STATEMENT,
            SentReminder.key.in_(statement_keys(Case.id, month)),
        )
        .exists()
    )
    cases = session.scalars(
        sa.select(Case)
        .join(Debtor, Debtor.id == Case.debtor_id)
        .where(
            Case.statement_month.is_not(None),
            Case.statement_month < month,
            Case.status.in_(STATEMENT_CASE_STATUSES),
            Debtor.monthly_statements,
            ~sent,
        )
        .options(*WITH_CONTACTS)
        .order_by(Case.id)
    ).all()
    owed = balances(session, [case.id for case in cases]) if cases else {}
    return [
        DueReminder(STATEMENT, case, owed[case.id], today, month=month)
        for case in cases
        if owed[case.id] > 0
    ]


def statement_period_start(
    session: Session, case_id: int, *, today: dt.date, zone: ZoneInfo
) -> dt.datetime:
    """Where a statement's "payments since" starts: when the last statement on the case was
    sent, or for the first one, the start of last month in the agency's calendar."""
    last = session.scalar(
        sa.select(sa.func.max(SentReminder.created_at)).where(
            SentReminder.case_id == case_id, SentReminder.kind == STATEMENT
        )
    )
    if last is not None:
        return last
    first_of_last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return dt.datetime.combine(first_of_last_month, dt.time(), tzinfo=zone)


def payments_since(session: Session, case_id: int, since: dt.datetime) -> list[LedgerEntry]:
    """Payments (to us or to the client) and returned payments recorded after `since`."""
    return list(
        session.scalars(
            sa.select(LedgerEntry)
            .where(
                LedgerEntry.case_id == case_id,
                LedgerEntry.kind.in_(STATEMENT_MOVEMENTS),
                LedgerEntry.created_at > since,
            )
            .order_by(LedgerEntry.received_at, LedgerEntry.id)
        )
    )
