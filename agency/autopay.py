"""The autopay run (`flask --app wsgi plans charge-due`, and the daily job) and its emails."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from agency.extensions import db
from agency.mail import render_email
from agency.pdf import agency_letterhead
from agency.settings import MAX_AUTOPAY_WORKERS
from agency.timezone import agency_today, agency_zone
from cases.case import Case
from cases.contact_log import ContactRefused
from cases.messages import MessageError, send_case_email
from cases.plans import Installment
from payments.autopay import AUTOPAY, ChargeRun, charge_due, due_installments
from portal import i18n

log = logging.getLogger(__name__)
JOB = "agency.autopay:charge_due_job"
SCHEDULE = "0 14 * * *"  # daily, 14:00 UTC: morning in the agency's US time zones


def _gateway(session: Session, today: dt.date):
    """The payment gateway; without Stripe configured, a run with nothing to charge still
    does the rest (breaking plans long past due), and one with charges due is refused."""
    gateway = current_app.extensions.get("recourse.gateway")
    if gateway is None:
        due = due_installments(session, today)
        if due:
            raise click.ClickException(
                f"Stripe is not configured (STRIPE_SECRET_KEY): {len(due)} installment(s) "
                "are due and were not charged"
            )
    return gateway


class WorkerSessions:
    """Opens a session for one of `charge_due`'s worker processes: in that process, an app made
    from the same settings, in an app context that lasts as long as the session (so the jobs its
    commits queue are dispatched as anywhere else). Pickles, to reach the worker processes."""

    def __init__(self, config: dict):
        self.config = config

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        from agency import create_app

        app = create_app(self.config)
        with app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()
                db.engine.dispose()


def worker_sessions(app: Flask) -> WorkerSessions:
    """For `charge_due`'s worker processes: sessions on this app's database."""
    return WorkerSessions(dict(app.config))


def charge_due_job(session: Session, as_of: str | None = None) -> ChargeRun:
    """The daily job: charge what is due today (in the agency's time zone), with
    AUTOPAY_WORKERS worker processes."""
    today = dt.date.fromisoformat(as_of) if as_of else agency_today()
    app = current_app._get_current_object()
    return charge_due(
        session,
        _gateway(session, today),
        today=today,
        zone=agency_zone(),
        workers=app.config["AUTOPAY_WORKERS"],
        worker_session=worker_sessions(app),
    )


def email_authentication(session: Session, installment_id: int) -> None:
    """Ask the debtor to come and confirm an installment their bank wants authenticated."""
    installment = session.get(Installment, installment_id)
    case = session.get(Case, installment.plan.case_id)
    email = case.debtor.email_to_use
    if email is None:
        log.info("installment %s needs authentication; no email to send to", installment_id)
        return
    agency = agency_letterhead()
    link = agency["portal"].rsplit("/portal", 1)[0] + (
        f"/portal/installments/{installment.id}/authenticate"
    )
    subject, body = render_email(
        "autopay_authentication",
        i18n.known(case.debtor.language),
        case=case,
        agency=agency,
        installment=installment,
        amount=f"${installment.amount_cents / 100:,.2f}",
        link=link,
    )
    try:
        send_case_email(session, case, to=email.address, subject=subject, body=body, actor=AUTOPAY)
    except (ContactRefused, MessageError) as exc:
        log.info("installment %s: authentication email held back: %s", installment_id, exc)


def register_cron(scheduler) -> None:
    """Add the daily autopay run to RQ's cron scheduler, on the `payments` queue."""
    from agency.jobs import rq_entry

    scheduler.register(rq_entry, "payments", args=(JOB,), cron=SCHEDULE, name="plans-charge-due")


plans_cli = AppGroup("plans", help="Payment plans and autopay.")


@plans_cli.command("charge-due")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day to charge for, in the agency's time zone (default: today).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_AUTOPAY_WORKERS),
    default=1,
    show_default=True,
    help="Worker processes charging at once (each takes two database connections).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def charge_due_command(as_of, workers, as_json):
    """Charge the autopay installments due, retry declined ones, break plans 10 days late."""
    today = as_of.date() if as_of else agency_today()
    try:
        run = charge_due(
            db.session,
            _gateway(db.session, today),
            today=today,
            zone=agency_zone(),
            workers=workers,
            worker_session=worker_sessions(current_app._get_current_object()),
        )
    except ValueError as exc:  # e.g. worker processes on an in-memory database
        raise click.ClickException(str(exc)) from None
    except BrokenProcessPool:
        raise click.ClickException(
            "a worker process died; run the command again: the installments it was charging "
            "are looked up at Stripe and none is charged twice"
        ) from None
    db.session.commit()
    if as_json:
        click.echo(json.dumps(run.as_json()))
        return
    click.echo(
        f"{today}: {len(run.charged)} charged, {len(run.failed)} failed, "
        f"{len(run.needs_authentication)} need authentication, {len(run.broken)} plan(s) broken"
        + (f", {len(run.pending)} pending" if run.pending else "")
        + "."
    )
