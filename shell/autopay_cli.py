"""The autopay run: `flask --app wsgi plans charge-due`, and the daily job on RQ's cron."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from cases.jobs import declare, handles
from payments.autopay import ChargeRun, charge_due, due_installments
from shell.extensions import db
from shell.job_runner import rq_entry
from shell.settings import MAX_AUTOPAY_WORKERS
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import step

log = logging.getLogger(__name__)
CHARGE_DUE = declare("autopay.charge_due", queue="payments")
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

    def __init__(self, config: dict, create_app: Callable[[dict], Flask]):
        self.config = config
        self.create_app = create_app  # agency.create_app: pickled by its name

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        app = self.create_app(self.config)
        with app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()
                db.engine.dispose()


def worker_sessions(app: Flask) -> WorkerSessions:
    """For `charge_due`'s worker processes: sessions on this app's database."""
    return WorkerSessions(dict(app.config), app.extensions["recourse.create_app"])


@handles(CHARGE_DUE.name)
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


def register_cron(scheduler) -> None:
    """Add the daily autopay run to RQ's cron scheduler, on the `payments` queue."""
    scheduler.register(
        rq_entry, "payments", args=(CHARGE_DUE.name,), cron=SCHEDULE, name="plans-charge-due"
    )


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
        with step() as session:
            run = charge_due(
                session,
                _gateway(session, today),
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
    if as_json:
        click.echo(json.dumps(run.as_json()))
    else:
        click.echo(
            f"{today}: {len(run.charged)} charged, {len(run.failed)} failed, "
            f"{len(run.needs_authentication)} need authentication, "
            f"{len(run.broken)} plan(s) broken"
            + (f", {len(run.pending)} pending" if run.pending else "")
            + "."
        )
    if run.pending:  # cron and its monitoring see a run that did not finish its work
        click.echo(
            f"Error: {len(run.pending)} installment(s) left pending (Stripe not reached, or the "
            "charge still processing); the next run reconciles them, none is charged twice",
            err=True,
        )
        raise SystemExit(1)
