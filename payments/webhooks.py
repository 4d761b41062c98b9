"""Stripe webhooks: each event kept once when it arrives, applied at most once, whatever the
order of delivery.

The endpoint verifies an event's signature, keeps it in the inbox (`stripe_inbox`, unique by
the event's id) and answers at once; the `stripe.apply_events` job then applies what the inbox
holds, oldest first, each event in a unit of work of its own (`accept_event`, `next_pending`,
`apply_pending`). An event that cannot be applied yet (Stripe away when a refund needs its
payment, a deadlock) stays in the inbox with its error and is tried again by the next run, and
every minute by the scheduler.

The event id is recorded under a unique key in the same transaction as its effect. Money is
keyed by Stripe's own ids (the PaymentIntent for a payment, the charge's refunded total for
refunds, the dispute for a lost dispute), so the same money announced twice, under two event
ids or out of order, moves once. A succeeded PaymentIntent is taken from the verified event as
it is; Stripe is asked again only when a refund or dispute arrives before its payment (the
PaymentIntent, to apply the payment first).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case
from cases.debtors import takes_email
from cases.jobs import declare, enqueue, enqueue_many
from cases.model import Base, utcnow
from payments.gateway import PaymentGateway, PaymentIntentInfo, payment_intent_from
from payments.posting import (
    Arrived,
    DuplicatePosting,
    LedgerEntry,
    lock_case_by_reference,
    locked_by_reference,
    locked_case,
    locking_by_reference,
    post_arrived,
    post_payment,
    posted,
    reverse_payment,
    reverse_to_total,
    reversed_so_far,
)
from payments.unmatched import hold_unmatched

# The receipt of a card payment, written by correspondence.receipts.
RECEIPT_EMAIL = declare("receipts.email", queue="mail")
# Apply what the inbox holds (shell.stripe_cli).
APPLY_EVENTS = declare("stripe.apply_events", queue="payments")

STRIPE = audit.Actor(None, "stripe")


class StripeEvent(Base):
    """A webhook event we applied (or chose to ignore): never applied again."""

    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(80), unique=True)
    type: Mapped[str] = mapped_column(sa.String(80))
    object_id: Mapped[str | None] = mapped_column(sa.String(80), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(200), default="")
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InboxEvent(Base):
    """A verified webhook event as Stripe sent it, kept from the moment it arrived until it is
    applied (`applied_at`); one row per event id, however often it is sent."""

    __tablename__ = "stripe_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(80), unique=True)
    type: Mapped[str] = mapped_column(sa.String(80))
    payload: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[dt.datetime | None]
    tried_at: Mapped[dt.datetime | None]  # its last attempt that failed
    attempts: Mapped[int] = mapped_column(default=0)  # attempts that failed
    last_error: Mapped[str] = mapped_column(sa.String(300), default="")

    __table_args__ = (
        sa.Index(
            "ix_stripe_inbox_pending",
            "id",
            postgresql_where=sa.text("applied_at IS NULL"),
            sqlite_where=sa.text("applied_at IS NULL"),
        ),
    )


class BadEvent(ValueError):
    """A signed body that is not an event we can keep (no id or no type)."""


def accept_event(session: Session, event: dict[str, Any], payload: str) -> bool:
    """Keep a verified event in the inbox, and ask for it to be applied once this unit of work
    commits; False when the inbox has it already (a re-send: nothing more to do). One
    statement. The job is not written to the job outbox: the inbox row is its record, and the
    scheduler's minute run applies whatever a lost job left."""
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str) or not kind:
        raise BadEvent("the event has no id or no type")
    if len(event_id) > 80 or len(kind) > 80:
        raise BadEvent("the event's id or type is too long")
    if not isinstance((event.get("data") or {}).get("object"), dict):
        raise BadEvent("the event carries no object")
    new = session.scalar(
        _ACCEPT[_dialect(session)],
        {"event_id": event_id, "type": kind, "payload": payload, "received_at": utcnow()},
    )
    if new is None:
        return False
    enqueue(session, APPLY_EVENTS, durable=False)
    return True


def _accept_statement(insert) -> sa.Insert:
    inbox = InboxEvent.__table__
    return (
        insert(inbox)
        .values(
            {
                **{n: sa.bindparam(n) for n in ("event_id", "type", "payload", "received_at")},
                "attempts": 0,
                "last_error": "",
            }
        )
        .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
        .returning(inbox.c.id)
    )


_ACCEPT = {
    "postgresql": _accept_statement(postgresql.insert),
    "sqlite": _accept_statement(sqlite.insert),
}

# How long an event that failed waits before a job (a new event's, or the scheduler's minute
# run) tries it again; `flask stripe apply-events` tries it whenever it runs.
RETRY_AFTER = dt.timedelta(seconds=30)


def next_pending(
    session: Session, *, skip: set[int] | frozenset[int] = frozenset(), retry_before=None
) -> InboxEvent | None:
    """The oldest event not applied yet, locked for this unit of work (one another run holds is
    passed over), leaving out those in `skip` and those that failed after `retry_before`."""
    inbox = InboxEvent
    query = sa.select(inbox).where(inbox.applied_at.is_(None))
    if skip:
        query = query.where(inbox.id.not_in(skip))
    if retry_before is not None:
        query = query.where(sa.or_(inbox.tried_at.is_(None), inbox.tried_at <= retry_before))
    query = query.order_by(inbox.id).limit(1).with_for_update(skip_locked=True)
    return session.scalar(query)


def apply_pending(
    session: Session,
    row: InboxEvent,
    gateway: PaymentGateway,
    local_date: Callable[[int], dt.date],
) -> str:
    """Apply an event of the inbox (locked by `next_pending`) and mark it applied, in the
    caller's unit of work; what happened."""
    outcome = handle_event(session, json.loads(row.payload), gateway, local_date)
    row.applied_at = utcnow()
    return outcome


def note_failure(session: Session, inbox_id: int, error: str) -> int:
    """An attempt to apply the event failed (and was rolled back): counted, with its error; the
    attempts that failed so far."""
    return session.scalar(
        sa.update(InboxEvent)
        .where(InboxEvent.id == inbox_id)
        .values(attempts=InboxEvent.attempts + 1, tried_at=utcnow(), last_error=error[:300])
        .returning(InboxEvent.attempts)
    )


def pending_count(session: Session) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(InboxEvent).where(InboxEvent.applied_at.is_(None))
    )


HANDLED = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.closed",
)


def handle_event(
    session: Session,
    event: dict[str, Any],
    gateway: PaymentGateway,
    local_date: Callable[[int], dt.date],
) -> str:
    """Apply one verified event; returns what happened (for logs and tests).

    `local_date` turns a Unix time into the agency's calendar date (SPEC §9: money belongs to
    the day it happened in the agency's time zone).
    """
    obj = event["data"]["object"]
    when = event.get("created") or 0  # when Stripe says it happened
    if event["type"] == "payment_intent.succeeded":
        outcome = _payment_recorded_after(session, event, obj, local_date(when))
        if outcome is not None:
            return outcome
    record_id = _record(session, event["id"], event["type"], obj.get("id"))
    if record_id is None:
        return "duplicate event"
    handler = {
        "payment_intent.succeeded": _payment_succeeded,
        "payment_intent.payment_failed": _payment_failed,
        "charge.refunded": _charge_refunded,
        "charge.dispute.closed": _dispute_closed,
    }.get(event["type"])
    outcome = handler(session, obj, gateway, local_date, when) if handler else "ignored"
    session.execute(_OUTCOME, {"record_id": record_id, "outcome": outcome[:200]})
    return outcome


def _payment_recorded_after(
    session: Session, event: dict[str, Any], obj: dict, received_at: dt.date
) -> str | None:
    """A new payment, the common event, in one statement fewer: its case is locked by the
    statement that also looks for the event's record, and the event is recorded after the
    payment is posted, with its outcome. A delivery of the same event being applied meanwhile
    holds the case's lock first: by the time this one reads under the lock, the payment is
    posted (nothing is posted twice: its PaymentIntent's id is the entry's unique key), and the
    event's unique key refuses the record. None when the event does not carry its whole
    PaymentIntent or names no case: it is recorded first, as every other event is."""
    if not all(obj.get(name) is not None for name in _INTENT_FIELDS):
        return None
    intent = payment_intent_from(obj)
    reference = _reference(intent)
    if not intent.succeeded or not reference:
        return None
    row = locked_by_reference(
        session, _LOCK_AND_LOOK, {"reference": reference, "event_id": event["id"]}
    )
    if row is None:
        return None
    case, emailable, recorded = row
    if recorded:
        return "duplicate event"
    entry, new = _post_intent(session, intent, received_at, case, bool(emailable))
    outcome = f"posted {entry.external_id}"
    if _record(session, event["id"], event["type"], obj.get("id"), outcome) is None:
        if new:  # recorded by a delivery that did not post it: cannot be, but never twice
            raise RuntimeError(f"event {event['id']} was recorded meanwhile: not applied")
        return "duplicate event"
    return outcome


def _record(
    session: Session, event_id: str, kind: str, object_id: str | None, outcome: str = ""
) -> int | None:
    """Record the event under its unique id; None when it is recorded already (a re-send; one
    being applied right now by another request is waited for). One statement: no savepoint."""
    return session.scalar(
        _RECORD[_dialect(session)],
        {
            "event_id": event_id,
            "type": kind,
            "object_id": object_id,
            "outcome": outcome[:200],
            "received_at": utcnow(),
        },
    )


def _record_statement(insert) -> sa.Insert:
    events = StripeEvent.__table__  # the table, not the class: no ORM bulk insert around it
    return (
        insert(events)
        .values(
            {
                name: sa.bindparam(name)
                for name in ("event_id", "type", "object_id", "outcome", "received_at")
            }
        )
        .on_conflict_do_nothing(index_elements=[events.c.event_id])
        .returning(events.c.id)
    )


# Built once: a statement's construction costs more CPU than its round trip to the database.
_RECORD = {
    "postgresql": _record_statement(postgresql.insert),
    "sqlite": _record_statement(sqlite.insert),
}
_OUTCOME = (
    sa.update(StripeEvent.__table__)
    .where(StripeEvent.__table__.c.id == sa.bindparam("record_id"))
    .values(outcome=sa.bindparam("outcome"))
)


# The case of a payment locked, with whether its event is recorded already (bound: `reference`,
# `event_id`).
_LOCK_AND_LOOK = locking_by_reference(
    sa.exists().where(StripeEvent.__table__.c.event_id == sa.bindparam("event_id"))
)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _reference(intent: PaymentIntentInfo) -> str:
    return (intent.metadata or {}).get("case_reference", "").strip().upper()


def _locked_case_for(session: Session, intent: PaymentIntentInfo) -> tuple[Case | None, bool]:
    """The case the PaymentIntent's metadata names, locked for posting, and whether its debtor
    has an email address open to us (for the receipt): one statement."""
    reference = _reference(intent)
    return lock_case_by_reference(session, reference) if reference else (None, False)


def apply_succeeded_intent(
    session: Session, intent: PaymentIntentInfo, received_at: dt.date, case: Case | None = None
) -> LedgerEntry | None:
    """Post a succeeded PaymentIntent once (whoever created it), or keep it as unmatched. The
    case is the one its metadata names; a caller that has it loaded already may pass it."""
    if not intent.succeeded:
        return None
    if case is None:
        case, emailable = _locked_case_for(session, intent)
    else:
        emailable = None  # asked once the payment is posted
    amount = intent.amount_received_cents or intent.amount_cents
    if case is None:
        already = posted(session, intent.id)  # matched to a case by hand since
        if already is not None:
            return already
        hold_unmatched(
            session,
            external_id=intent.id,
            amount_cents=amount,
            received_at=received_at,
            method="card",
            details=f"Stripe PaymentIntent {intent.id} without a known case "
            f"(metadata {intent.metadata})",
            actor=STRIPE,
        )
        return None
    return _post_intent(session, intent, received_at, case, emailable)[0]


def _post_intent(
    session: Session,
    intent: PaymentIntentInfo,
    received_at: dt.date,
    case: Case,
    emailable: bool | None,
) -> tuple[LedgerEntry, bool]:
    """Post a succeeded PaymentIntent to its case, locked or not yet; the entry, and whether
    it was posted now (not before). `emailable` None: read once the payment is posted."""
    try:
        entry = post_payment(
            session,
            case,
            intent.amount_received_cents or intent.amount_cents,
            external_id=intent.id,
            received_at=received_at,
            method="card",
            actor=STRIPE,
            memo="card payment (Stripe)",
            allow_overpayment=True,
        )
    except DuplicatePosting:
        return posted(session, intent.id), False
    # The debtor paid just now (portal, or on the phone): a receipt goes to them at once, if
    # they have an address open to email (the receipt job would find none otherwise; the
    # contact rules are still its to apply when it runs).
    if emailable is None:
        emailable = session.scalar(sa.select(takes_email(case.debtor_id)))
    if emailable:
        enqueue(session, RECEIPT_EMAIL, entry.id)
    return entry, True


def apply_succeeded_intents(
    session: Session, paid: list[tuple[PaymentIntentInfo, dt.date, int]]
) -> list[LedgerEntry]:
    """`apply_succeeded_intent` for several succeeded PaymentIntents, each with the day it was
    received and the id of its case (known to the caller: autopay's): posted together
    (`post_arrived`), their receipts queued in one outbox INSERT."""
    if not paid:
        return []
    results = post_arrived(
        session,
        [
            Arrived(case_id, intent.amount_received_cents or intent.amount_cents, intent.id, day)
            for intent, day, case_id in paid
        ],
        method="card",
        actor=STRIPE,
        memo="card payment (Stripe)",
    )
    entries, receipts = [], []
    for (intent, _day, _case_id), (entry, emailable) in zip(paid, results, strict=True):
        if entry is None:  # posted already, whoever posted it
            entries.append(posted(session, intent.id))
            continue
        entries.append(entry)
        if emailable:  # a receipt, as apply_succeeded_intent sends one
            receipts.append((entry.id,))
    enqueue_many(session, RECEIPT_EMAIL, receipts)
    return entries


def _payment_succeeded(session, obj, gateway, local_date, when) -> str:
    # The signed event's own PaymentIntent, not read again (SPEC §8: Stripe saying so in a
    # verified webhook makes a payment final). Old news changes nothing it says: a succeeded
    # PaymentIntent stays succeeded with the amount it received; refunds and disputes come as
    # their own events, keyed by their totals.
    intent = _intent_in(obj, gateway)
    entry = apply_succeeded_intent(session, intent, local_date(when))
    return f"posted {entry.external_id}" if entry else "held as unmatched"


# What a PaymentIntent in an event must carry to be applied as it is (Stripe's always does).
_INTENT_FIELDS = ("id", "status", "amount", "currency", "created", "metadata")


def _intent_in(obj: dict, gateway: PaymentGateway) -> PaymentIntentInfo:
    """The event's PaymentIntent; read from Stripe only when the event carries a part of it
    (a hand-made event, not one of Stripe's)."""
    if all(obj.get(name) is not None for name in _INTENT_FIELDS):
        return payment_intent_from(obj)
    return gateway.retrieve_payment_intent(obj["id"])


def _payment_failed(session, obj, gateway, local_date, when) -> str:
    reference = (obj.get("metadata") or {}).get("case_reference", "").strip().upper()
    case = session.scalar(sa.select(Case).where(Case.reference == reference)) if reference else None
    error = obj.get("last_payment_error") or {}
    audit.record(
        session,
        STRIPE,
        "payment_intent",
        obj["id"],
        "payment.failed",
        case_id=case.id if case else None,
        code=error.get("code"),
        decline_code=error.get("decline_code"),
        message=error.get("message"),
        amount_cents=obj.get("amount"),
    )
    return "failure recorded"


def _payment_for_charge(session, intent_id: str, gateway, local_date):
    entry = posted(session, intent_id)
    if entry is None:  # the refund arrived before the success: apply the payment first
        intent = gateway.retrieve_payment_intent(intent_id)
        entry = apply_succeeded_intent(session, intent, local_date(int(intent.created.timestamp())))
    return entry


def _charge_refunded(session, obj, gateway, local_date, when) -> str:
    intent_id = obj.get("payment_intent")
    if not intent_id:
        return "ignored: charge without a PaymentIntent"
    payment = _payment_for_charge(session, intent_id, gateway, local_date)
    if payment is None:
        return "ignored: payment not applied"
    # Two refund events of one charge may be applied at once: what was already reversed is
    # read only under the case's lock (reverse_to_total), or both would reverse their whole
    # running total.
    refunded = int(obj.get("amount_refunded") or 0)
    entry = reverse_to_total(
        session,
        payment,
        refunded,
        external_id=f"refund:{obj['id']}:{refunded}",
        received_at=local_date(_latest_refund_time(obj) or when),
        reason="refunded through Stripe",
        actor=STRIPE,
    )
    return f"reversed {entry.amount_cents}" if entry is not None else "nothing new refunded"


def _latest_refund_time(charge: dict) -> int:
    """When the charge's latest refund was made; 0 when the charge does not list its refunds
    (Stripe leaves `refunds` out of charges since API version 2022-11-15): the caller then
    dates it by the event."""
    refunds = (charge.get("refunds") or {}).get("data") or []
    return max((r.get("created") or 0 for r in refunds), default=0)


def _dispute_closed(session, obj, gateway, local_date, when) -> str:
    if obj.get("status") != "lost":
        return f"dispute {obj.get('status')}: nothing to reverse"
    intent_id = obj.get("payment_intent")
    if not intent_id:
        return "ignored: dispute without a PaymentIntent"
    payment = _payment_for_charge(session, intent_id, gateway, local_date)
    if payment is None:
        return "ignored: payment not applied"
    locked_case(session, payment.case_id)
    external_id = f"dispute:{obj['id']}"
    if posted(session, external_id) is not None:
        return "dispute already reversed"
    left = -payment.amount_cents - reversed_so_far(session, payment)
    amount = min(int(obj.get("amount") or left), left)
    if amount <= 0:
        return "nothing left to reverse"
    reverse_payment(
        session,
        payment,
        amount_cents=amount,
        external_id=external_id,
        received_at=local_date(obj.get("created") or when),
        reason="card dispute lost",
        actor=STRIPE,
    )
    return f"reversed {amount}"
