"""Applying the Stripe events the webhook kept (payments.webhooks): the `stripe.apply_events`
job each new event asks for, `flask --app wsgi stripe apply-events`, and the scheduler's run
every minute, which applies what a lost job or a failed attempt left in the inbox."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from cases.jobs import handles
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
from shell.job_runner import rq_entry
from shell.timezone import agency_zone
from shell.unit_of_work import step

log = logging.getLogger(__name__)
SCHEDULE = "* * * * *"  # every minute: what a lost job or a failed attempt left


@dataclass
class Applied:
    applied: int = 0
    failed: list[str] = field(default_factory=list)  # "evt_…: the error"
    left: int = 0  # events still in the inbox when the run ended

    def as_json(self) -> dict:
        return {"applied": self.applied, "failed": self.failed, "left": self.left}


def apply_events(*, retry_before: dt.datetime | None = None, limit: int | None = None) -> Applied:
    """Apply the inbox's events, oldest first, each in a unit of work of its own, until none is
    left that this run may take: an event another run holds is left to it, one that fails is
    rolled back, noted and left for a later run, and with `retry_before` an event that failed
    after that time waits. `limit`: at most that many events."""
    gateway = current_app.extensions.get("recourse.gateway")
    if gateway is None:
        raise RuntimeError("Stripe is not configured (STRIPE_SECRET_KEY): events wait")
    gateway = gateway.for_caller(Caller.WEBHOOK)  # after the portal, in the shared budget
    zone = agency_zone()

    def local_date(unix_time: int) -> dt.date:
        return dt.datetime.fromtimestamp(unix_time, dt.UTC).astimezone(zone).date()

    run, skip, retried = Applied(), set(), dict[int, int]()
    while limit is None or run.applied + len(run.failed) < limit:
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
                note_failure(session, inbox_id, error)
    with step() as session:
        run.left = pending_count(session)
    return run


# PostgreSQL's "try again" errors: deadlock detected, serialization failure.
TRANSIENT_STATES = ("40P01", "40001")
TRANSIENT_RETRIES = 3


def _transient(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_STATES


@handles(APPLY_EVENTS.name)
def apply_events_job(session: Session) -> Applied:
    """What each new event asks for: apply the inbox's events (an event that failed less than
    RETRY_AFTER ago waits for a later run)."""
    return apply_events(retry_before=utcnow() - RETRY_AFTER)


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
