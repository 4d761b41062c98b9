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

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agency.extensions import db
from agency.mail import render_email, render_text
from agency.pdf import agency_letterhead
from agency.timezone import agency_today, agency_zone
from cases import audit
from cases.contact_log import ContactRefused
from cases.ledger import balance_cents
from cases.messages import MessageError, send_case_email, send_case_text
from cases.plans import active_plan
from cases.reminders import (
    STATEMENT,
    DueReminder,
    SentReminder,
    already_sent,
    check_promises,
    due_reminders,
    due_statements,
    payments_since,
    reminder_key,
    statement_period_start,
)
from portal import i18n

log = logging.getLogger(__name__)
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
    upcoming = [i for i in plan.installments if i.status != "paid"] if plan else []
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


def _send_one(session: Session, due: DueReminder, channel: str, to: str, run: Run) -> None:
    key = reminder_key(due.kind, due.target, channel)
    if already_sent(session, key):
        return
    language = i18n.known(due.case.debtor.language)
    context = _context(session, due)
    try:
        with session.begin_nested():
            if channel == "email":
                subject, body = render_email(EMAIL_TEMPLATES[due.kind], language, **context)
                message = send_case_email(
                    session, due.case, to=to, subject=subject, body=body, actor=SYSTEM
                )
            else:
                body = render_text("text_reminder", language, **context)
                message = send_case_text(session, due.case, to=to, body=body, actor=SYSTEM)
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
            session.flush()
    except (ContactRefused, MessageError) as exc:
        run.held.append(f"{key}: {exc}")
        return
    except IntegrityError:  # another run sent it a moment ago
        return
    run.sent.append(key)


def send_due(session: Session, as_of: str | None = None) -> Run:
    """The job (`agency.reminders:send_due`): settle promises, send what is due and allowed."""
    today = dt.date.fromisoformat(as_of) if as_of else agency_today()
    zone = agency_zone()
    run = Run(today)
    settled = check_promises(session, today=today, zone=zone, actor=SYSTEM)
    run.kept, run.broken = settled["kept"], settled["broken"]
    for due in [
        *due_reminders(session, today=today, zone=zone),
        *due_statements(session, today=today),
    ]:
        for channel, to in _targets(due):
            _send_one(session, due, channel, to, run)
    log.info(
        "reminders %s: %d kept, %d broken, %d sent, %d held back",
        today,
        len(run.kept),
        len(run.broken),
        len(run.sent),
        len(run.held),
    )
    return run


# Hourly, a few minutes past the hour: each run sends what the rules allow at that hour.
SCHEDULE = "5 * * * *"
JOB = "agency.reminders:send_due"


def cron_scheduler(connection):
    """RQ's cron scheduler with the reminders job registered on the `default` queue."""
    from rq.cron import CronScheduler

    from agency.jobs import rq_entry

    scheduler = CronScheduler(connection=connection)
    scheduler.register(rq_entry, "default", args=(JOB,), cron=SCHEDULE, name="reminders")
    return scheduler


reminders_cli = AppGroup("reminders", help="Promises and payment reminders.")
promises_cli = AppGroup("promises", help="Promises to pay.")

as_of_option = click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day to act for, in the agency's time zone (default: today).",
)


@reminders_cli.command("send")
@as_of_option
def reminders_send(as_of):
    """Settle promises and send the reminders due now (run it hourly)."""
    run = send_due(db.session, as_of.date().isoformat() if as_of else None)
    db.session.commit()
    click.echo(
        f"{run.today}: {len(run.kept)} promise(s) kept, {len(run.broken)} broken; "
        f"{len(run.sent)} reminder(s) sent, {len(run.held)} held back."
    )
    statements = sum(1 for key in run.sent if key.startswith(f"{STATEMENT}:"))
    if statements:
        click.echo(f"  of them, {statements} monthly statement(s) of balance")
    for line in run.held:
        click.echo(f"  held: {line}")


@promises_cli.command("check")
@as_of_option
def promises_check(as_of):
    """Mark open promises kept or broken."""
    today = as_of.date() if as_of else agency_today()
    settled = check_promises(db.session, today=today, zone=agency_zone(), actor=SYSTEM)
    db.session.commit()
    click.echo(f"{today}: {len(settled['kept'])} kept, {len(settled['broken'])} broken.")


@reminders_cli.command("schedule")
def reminders_schedule():
    """Run RQ's cron scheduler: enqueues the reminders job hourly and the autopay run daily
    (needs REDIS_URL and a worker on the default and payments queues)."""
    from agency.jobs import RQRunner

    runner = current_app.extensions["recourse.jobs"]
    if not isinstance(runner, RQRunner):
        click.echo(
            "Error: REDIS_URL is not set: run `flask --app wsgi reminders send` hourly from cron",
            err=True,
        )
        raise SystemExit(1)
    from agency.autopay import register_cron

    scheduler = cron_scheduler(runner.connection)
    register_cron(scheduler)  # and the daily autopay run (plans charge-due)
    scheduler.start()
