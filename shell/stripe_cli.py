"""Applying the Stripe events the webhook kept (payments.webhooks): the `stripe.apply_events`
job each new event asks for, `flask --app wsgi stripe apply-events`, and the scheduler's run
every minute, which applies what a lost job or a failed attempt left in the inbox."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field

import click
from flask import current_app
from flask.cli import AppGroup
from rq.timeouts import BaseTimeoutException
from sqlalchemy.orm import Session

from cases.jobs import enqueue, handles
from cases.model import utcnow
from payments.stripe_budget import Caller
from payments.webhooks import (
    APPLY_EVENTS,
    RETRY_AFTER,
    apply_pending,
    next_pending,
    note_failure,
    pending_count,
)
from shell.job_runner import RQRunner, rq_entry
from shell.timezone import agency_zone
from shell.unit_of_work import step

log = logging.getLogger(__name__)
SCHEDULE = "* * * * *"  # every minute: what a lost job or a failed attempt left


@dataclass
class Applied:
    applied: int = 0
    failed: list[str] = field(default_factory=list)  # "evt_…: the error"
    left: int = 0  # events still in the inbox when the run ended
    stopped: bool = False  # its time was up before the inbox was done

    def as_json(self) -> dict:
        return {"applied": self.applied, "failed": self.failed, "left": self.left}


def apply_events(
    *, retry_before: dt.datetime | None = None, seconds: float | None = None
) -> Applied:
    """Apply the inbox's events, oldest first, each in a unit of work of its own, until none is
    left that this run may take: an event another run holds is left to it, one that fails is
    rolled back, noted and left for a later run, and with `retry_before` an event that failed
    after that time waits. With `seconds`, no event is begun once they have passed
    (`Applied.stopped`)."""
    gateway = current_app.extensions.get("recourse.gateway")
    if gateway is None:
        raise RuntimeError("Stripe is not configured (STRIPE_SECRET_KEY): events wait")
    gateway = gateway.for_caller(Caller.WEBHOOK)  # after the portal, in the shared budget
    zone = agency_zone()

    def local_date(unix_time: int) -> dt.date:
        return dt.datetime.fromtimestamp(unix_time, dt.UTC).astimezone(zone).date()

    run, skip, retried = Applied(), set(), dict[int, int]()
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        if deadline is not None and time.monotonic() > deadline:
            run.stopped = True
            break
        event_id = inbox_id = kind = None
        try:
            with step() as session:
                row = next_pending(session, skip=skip, retry_before=retry_before)
                if row is None:
                    break
                inbox_id, event_id, kind = row.id, row.event_id, row.type
                outcome = apply_pending(session, row, gateway, local_date)
            run.applied += 1
            log.info("stripe event %s %s: %s", event_id, kind, outcome)
        except BaseTimeoutException:
            raise  # RQ's job timeout: the job ends here (what it began is rolled back)
        except Exception as exc:
            if inbox_id is None:
                raise  # the inbox could not be read: nothing to note
            if _transient(exc) and retried.get(inbox_id, 0) < TRANSIENT_RETRIES:
                # A deadlock's victim, say: rolled back, and taken again at once.
                retried[inbox_id] = retried.get(inbox_id, 0) + 1
                log.info("stripe event %s tried again at once: %s", event_id, exc)
                continue
            skip.add(inbox_id)
            error = f"{type(exc).__name__}: {exc}"
            run.failed.append(f"{event_id}: {error}")
            log.warning("stripe event %s not applied (tried again later): %s", event_id, error)
            with step() as session:
                attempts = note_failure(session, inbox_id, error)
            if attempts >= ATTEMPTS_BEFORE_ALARM:
                log.error("stripe event %s has failed %d times: %s", event_id, attempts, error)
    with step() as session:
        run.left = pending_count(session)
    return run


# PostgreSQL's "try again" errors: deadlock detected, serialization failure.
TRANSIENT_STATES = ("40P01", "40001")
TRANSIENT_RETRIES = 3


def _transient(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_STATES


# A failing event is logged as an ERROR from this many failed attempts on (one a minute).
ATTEMPTS_BEFORE_ALARM = 5
# How long one job applies events: in a worker, well within RQ's job timeout (180 s), then it
# asks for the next job; in-process, in the request of the event that asked, a short while (the
# rest waits for the next event's request, or for `stripe apply-events` from cron).
WORKER_SECONDS = 60.0
IN_PROCESS_SECONDS = 2.0


@handles(APPLY_EVENTS.name)
def apply_events_job(session: Session) -> Applied:
    """What each new event asks for, and the scheduler's minute run: apply the inbox's events
    (an event that failed less than RETRY_AFTER ago waits for a later run)."""
    on_rq = isinstance(current_app.extensions["recourse.jobs"], RQRunner)
    run = apply_events(
        retry_before=utcnow() - RETRY_AFTER,
        seconds=WORKER_SECONDS if on_rq else IN_PROCESS_SECONDS,
    )
    if run.stopped and on_rq:  # a backlog: the next job goes on with it
        with step() as session:
            enqueue(session, APPLY_EVENTS, durable=False)
    return run


def register_cron(scheduler) -> None:
    """Add the minute run to RQ's cron scheduler, on the `payments` queue."""
    scheduler.register(
        rq_entry, "payments", args=(APPLY_EVENTS.name,), cron=SCHEDULE, name="stripe-events"
    )


stripe_cli = AppGroup("stripe", help="Stripe's webhook events.")


@stripe_cli.command("apply-events")
@click.option("--json", "as_json", is_flag=True, help='Print {"applied": N, "failed": [...]}.')
def apply_events_command(as_json):
    """Apply the webhook events not applied yet, failed ones too (run it every minute from cron
    when there is no REDIS_URL)."""
    run = apply_events()
    if as_json:
        click.echo(json.dumps(run.as_json()))
    else:
        click.echo(
            f"{run.applied} event(s) applied, {len(run.failed)} failed, {run.left} left to apply."
        )
        for line in run.failed:
            click.echo(f"  failed: {line}")
    if run.failed:
        raise SystemExit(1)
