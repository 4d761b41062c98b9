"""The reminders job: settles promises, then sends the reminders due, by email and by text, in
the debtor's language, only when the contact rules allow it now; and each month, a statement of
balance to the debtors who asked for one.

Run it often (hourly): a reminder the rules hold back now (outside the debtor's hours, a
weekly limit) is tried again on the next run, and one already sent is never sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases import audit
from cases.compliance import PastContact
from cases.contact_log import ContactRefused, histories
from cases.jobs import declare, handles
from cases.ledger import balance_cents
from cases.messages import MessageError, send_case_email, send_case_text
from cases.plans import active_plan
from cases.reminders import (
    STATEMENT,
    DueReminder,
    SentReminder,
    check_promises,
    due_reminders,
    due_statements,
    payments_since,
    reminder_key,
    sent_keys,
    statement_period_start,
)
from correspondence import i18n
from correspondence.mail import render_email, render_text
from correspondence.pdf import agency_letterhead
from shell.timezone import agency_today, agency_zone

log = logging.getLogger(__name__)
SEND_DUE = declare("reminders.send_due")
SYSTEM = audit.Actor(None, "reminders")
EMAIL_TEMPLATES = {
    "promise_due": "promise_reminder",
    "promise_missed": "promise_missed",
    "installment_due": "installment_reminder",
    "installment_missed": "installment_missed",
    STATEMENT: "balance_statement",
}


@dataclass
class Run:
    today: dt.date
    kept: list[int] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # reminder keys
    held: list[str] = field(default_factory=list)  # "key: why"


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _context(session: Session, due: DueReminder) -> dict:
    context = {
        "case": due.case,
        "agency": agency_letterhead(),
        "amount": _money(due.amount_cents),
        "date": due.due_on.isoformat(),
        "balance": _money(balance_cents(session, due.case.id)),
        "installment": due.installment,
        "kind": due.kind,
    }
    if due.kind == STATEMENT:
        context.update(_statement(session, due))
    return context


def _statement(session: Session, due: DueReminder) -> dict:
    """What a statement of balance adds: its month, the payments since the last one, the
    plan's next installment."""
    zone = agency_zone()
    since = statement_period_start(session, due.case.id, today=due.due_on, zone=zone)
    entries = payments_since(session, due.case.id, since)
    plan = active_plan(session, due.case.id)
    # A paused plan (a dispute hold, or moved dates not yet confirmed) has no next payment.
    active = plan is not None and plan.status == "active"
    upcoming = [i for i in plan.installments if i.status != "paid"] if active else []
    return {
        "month": due.month,
        "since": since.astimezone(zone).date().isoformat(),
        "payments": [
            {
                "date": e.received_at.isoformat(),
                "kind": e.kind,
                "amount": _money(abs(e.amount_cents)),
            }
            for e in entries
        ],
        "paid": _money(-sum(e.amount_cents for e in entries)),
        "next_installment": upcoming[0] if upcoming else None,
        "next_amount": _money(upcoming[0].amount_cents) if upcoming else None,
    }


def _targets(due: DueReminder) -> list[tuple[str, str]]:
    """(channel, to): the debtor's first email open to us, and their first phone that
    consented to texts and has not opted out. A statement goes by one of them: email, or a
    text to a debtor we can only text."""
    debtor = due.case.debtor
    found = []
    email = debtor.email_to_use
    if email is not None:
        found.append(("email", email.address))
    phone = debtor.phone_for_texts
    if phone is not None:
        found.append(("text", phone.number))
    return found[:1] if due.kind == STATEMENT else found


def _send_one(
    session: Session,
    due: DueReminder,
    channel: str,
    to: str,
    run: Run,
    past: list[PastContact] | None = None,
) -> None:
    key = reminder_key(due.kind, due.target, channel)
    language = i18n.known(due.case.debtor.language)
    context = _context(session, due)
    try:
        with session.begin_nested():
            if channel == "email":
                subject, body = render_email(EMAIL_TEMPLATES[due.kind], language, **context)
                message = send_case_email(
                    session, due.case, to=to, subject=subject, body=body, actor=SYSTEM, past=past
                )
            else:
                body = render_text("text_reminder", language, **context)
                message = send_case_text(
                    session, due.case, to=to, body=body, actor=SYSTEM, past=past
                )
            session.add(
                SentReminder(
                    key=key,
                    case_id=due.case.id,
                    kind=due.kind,
                    channel=channel,
                    promise_id=due.promise.id if due.promise else None,
                    installment_id=due.installment.id if due.installment else None,
                    message_id=message.id,
                )
            )
            if due.kind == STATEMENT:
                due.case.statement_month = due.month  # out of the run's index until next month
            session.flush()
    except (ContactRefused, MessageError) as exc:
        run.held.append(f"{key}: {exc}")
        return
    except IntegrityError:  # another run sent it a moment ago
        return
    run.sent.append(key)


@handles(SEND_DUE.name)
def send_due(session: Session, as_of: str | None = None) -> Run:
    """The reminders job: settle promises, send what is due and allowed."""
    today = dt.date.fromisoformat(as_of) if as_of else agency_today()
    zone = agency_zone()
    run = Run(today)
    settled = check_promises(session, today=today, zone=zone, actor=SYSTEM)
    run.kept, run.broken = settled["kept"], settled["broken"]
    # What is due, and of it what was already sent (one query by the unique keys): a run
    # the same hour as the last does no work per case.
    todo = [
        (due, channel, to)
        for due in [
            *due_reminders(session, today=today, zone=zone),
            *due_statements(session, today=today),
        ]
        for channel, to in _targets(due)
    ]
    done = sent_keys(session, [reminder_key(d.kind, d.target, channel) for d, channel, _ in todo])
    todo = [(d, c, to) for d, c, to in todo if reminder_key(d.kind, d.target, c) not in done]
    # The contact rules' history of the cases to send to, two queries a thousand cases (not
    # two a reminder); each message queued is added to its case's as the run goes.
    case_ids = sorted({due.case.id for due, _, _ in todo})
    past: dict[int, list[PastContact]] = {}
    for start in range(0, len(case_ids), 1000):
        past.update(histories(session, case_ids[start : start + 1000]))
    for due, channel, to in todo:
        _send_one(session, due, channel, to, run, past.setdefault(due.case.id, []))
    log.info(
        "reminders %s: %d kept, %d broken, %d sent, %d held back",
        today,
        len(run.kept),
        len(run.broken),
        len(run.sent),
        len(run.held),
    )
    return run
