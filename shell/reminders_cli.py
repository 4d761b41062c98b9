"""`flask reminders send|schedule` and `flask promises check` (SPEC §10): the reminders job
(correspondence.reminder_run) run from the command line or on RQ's cron scheduler."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from rq.cron import CronScheduler
from rq.utils import now

from cases import chase
from cases.reminders import STATEMENT, check_promises
from correspondence.reminder_run import SEND_DUE, SYSTEM, send_due
from shell import autopay_cli, earlyout_cli, notices_cli, stripe_cli
from shell.job_runner import RQRunner, rq_entry, rq_sweep
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import step

# Hourly, a few minutes past the hour: each run sends what the rules allow at that hour.
SCHEDULE = "5 * * * *"


# How long a tick's claim is kept: far longer than two schedulers' clocks may differ.
CLAIM_SECONDS = 3600


class OncePerTick(CronScheduler):
    """RQ's cron scheduler, safe to run on two machines at once (a standby, or one started by
    mistake): each tick of each job is claimed in Redis (`SET NX`) before it is enqueued, so
    the job is enqueued once per tick, by whichever scheduler claims it first. A tick is the
    time the cron expression names, the same on every scheduler."""

    def enqueue_jobs(self):
        enqueued = []
        for job in self._cron_jobs:
            if not job.should_run():
                continue
            tick = job.next_enqueue_time
            claim = f"recourse:cron:{job.name}:{tick:%Y-%m-%dT%H:%M}"
            if self.connection.set(claim, self.name, nx=True, ex=CLAIM_SECONDS):
                job.enqueue(self.connection)
                enqueued.append(job)
            else:
                self.log.info("%s at %s: already enqueued by another scheduler", job.name, tick)
            job.set_enqueue_time(now())
        return enqueued


def cron_scheduler(connection):
    """RQ's cron scheduler with the reminders job registered on the `default` queue."""
    scheduler = OncePerTick(connection=connection)
    scheduler.register(rq_entry, "default", args=(SEND_DUE.name,), cron=SCHEDULE, name="reminders")
    # Every minute: jobs asked for while Redis was away leave the outbox.
    scheduler.register(rq_sweep, "default", cron="* * * * *", name="jobs-sweep")
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
    with step() as session:
        run = send_due(session, as_of.date().isoformat() if as_of else None)
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
    with step() as session:
        settled = check_promises(session, today=today, zone=agency_zone(), actor=SYSTEM)
    click.echo(f"{today}: {len(settled['kept'])} kept, {len(settled['broken'])} broken.")


@promises_cli.command("chase-rebuild")
def promises_chase_rebuild():
    """Recompute every case's `chase_from` (the queue's promises and plans to chase) after
    promises or plans were loaded behind the app's back."""
    with step() as session:
        chased = chase.rebuild(session)
    click.echo(f"{chased:,} case(s) have a promise or plan to chase.")


@reminders_cli.command("schedule")
def reminders_schedule():
    """Run RQ's cron scheduler: enqueues the reminders job hourly, the autopay run and the
    validation notices daily (needs REDIS_URL and a worker on the default and payments queues)."""
    runner = current_app.extensions["recourse.jobs"]
    if not isinstance(runner, RQRunner):
        click.echo(
            "Error: REDIS_URL is not set: run `flask --app wsgi reminders send` hourly from cron",
            err=True,
        )
        raise SystemExit(1)
    scheduler = cron_scheduler(runner.connection)
    autopay_cli.register_cron(scheduler)  # and the daily autopay run (plans charge-due)
    notices_cli.register_cron(scheduler)  # and the validation notices (notices send)
    earlyout_cli.register_cron(scheduler)  # and the hourly early-out run (earlyout run)
    stripe_cli.register_cron(scheduler)  # and the inbox's webhook events left to apply
    scheduler.start()
