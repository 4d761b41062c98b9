"""The command line of SPEC §10 (flask --app wsgi ...): clients, users, tokens, demo, worker."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError
from rq import Worker

from cases import audit
from cases.clients import ClientError, client_by_code, create_client
from cases.jobs import QUEUES
from cases.model import utcnow
from cases.offers import expire_offers
from cases.referral_file import FileRefused
from cases.referrals import import_file
from cases.second_factor import ENROLMENT_LINK_LIFETIME, SecondFactorError, issue_enrolment_link
from cases.second_factor import reset as reset_second_factor
from cases.users import (
    ROLES,
    TOKEN_LIFETIME,
    TOKEN_SCOPES,
    ApiToken,
    UserError,
    create_user,
    issue_token,
    revoke_token,
    user_by_email,
)
from correspondence.notice_run import send_notice
from correspondence.statement_mail import render_statement
from demo.early_out_seed import seed_early_out
from demo.seed import DEMO_LOGINS, Paperwork, portal_example, seed
from payments.fees import DEFAULT_TIERS, FeeScheduleError, parse_tiers, set_schedule
from shell.autopay_cli import plans_cli
from shell.config_cli import config_cli
from shell.earlyout_cli import earlyout_cli
from shell.extensions import db
from shell.job_runner import SWEEP_AFTER, RQRunner, sweep
from shell.notices_cli import notices_cli
from shell.referral_store import forget, store_referral_file
from shell.reminders_cli import promises_cli, reminders_cli
from shell.reports_cli import reports_cli
from shell.statements_cli import statements_cli
from shell.stripe_cli import stripe_cli
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import step

CLI_ACTOR = audit.Actor(None, "cli")

clients_cli = AppGroup("clients", help="Manage client businesses.")
users_cli = AppGroup("users", help="Manage staff and client users.")
tokens_cli = AppGroup("tokens", help="Issue, list and revoke API tokens.")
demo_cli = AppGroup("demo", help="Demo data.")
referrals_cli = AppGroup("referrals", help="Import referral files.")
offers_cli = AppGroup("offers", help="Settlement offers.")
jobs_cli = AppGroup("jobs", help="Background jobs and their outbox.")


def fail(message: str, code: int = 1):
    """Stop with the message; inside a `step()`, what the step wrote is rolled back."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@clients_cli.command("create")
@click.argument("code")
@click.argument("name")
@click.option(
    "--min-age-days",
    type=int,
    default=90,
    show_default=True,
    help="Minimum days past due for a referral to be accepted.",
)
@click.option(
    "--fee-tiers",
    default=DEFAULT_TIERS,
    show_default=True,
    help="Days past due at referral = fee in basis points.",
)
@click.option("--legal-fee-bps", type=int, default=None, help="Fee for cases in legal.")
def clients_create(code, name, min_age_days, fee_tiers, legal_fee_bps):
    """Create a client with its fee schedule."""
    with step() as session:
        try:
            tiers = parse_tiers(fee_tiers)
            client = create_client(session, code, name, actor=CLI_ACTOR, min_age_days=min_age_days)
            set_schedule(session, client, tiers, actor=CLI_ACTOR, legal_bps=legal_fee_bps)
        except (ClientError, FeeScheduleError) as exc:
            fail(str(exc))
    click.echo(f"Created client {client.code} ({client.name}), fee tiers {fee_tiers}")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--client", "client_code", default=None, help="Client code (client users only).")
@click.option("--name", default="", help="Display name.")
def users_create(email, role, client_code, name):
    """Create a user; the password is read from standard input."""
    client = None
    if client_code:
        client = client_by_code(db.session, client_code)
        if client is None:
            fail(f"no client with code {client_code}")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with step() as session:
        try:
            user = create_user(
                session, email, password, role, actor=CLI_ACTOR, client=client, name=name
            )
        except UserError as exc:
            fail(str(exc))
        link = issue_enrolment_link(session, user, actor=CLI_ACTOR)
    click.echo(f"Created {user.role} {user.email}" + (f" for {client.code}" if client else ""))
    _echo_enrolment_link(link)


def _echo_enrolment_link(token: str) -> None:
    base = current_app.config["APP_URL"].rstrip("/")
    hours = int(ENROLMENT_LINK_LIFETIME.total_seconds() // 3600)
    click.echo(f"Authenticator enrolment link (expires in {hours} hours): {base}/enrol/{token}")


@users_cli.command("reset-mfa")
@click.argument("email")
def users_reset_mfa(email):
    """Forget a user's authenticator and recovery codes (audited) and print a new enrolment
    link; the user sets up a new authenticator at the next sign-in or through the link."""
    user = user_by_email(db.session, email)
    if user is None:
        fail(f"no user {email}")
    with step() as session:
        try:
            reset_second_factor(session, user, actor=CLI_ACTOR)
        except SecondFactorError as exc:
            fail(str(exc))
        link = issue_enrolment_link(session, user, actor=CLI_ACTOR)
    click.echo(f"Reset the second factor of {user.email}.")
    _echo_enrolment_link(link)


@tokens_cli.command("create")
@click.argument("email")
@click.option(
    "--scope",
    type=click.Choice(TOKEN_SCOPES),
    default="write",
    show_default=True,
    help="read: GET requests only; write: also referrals, contacts and payments.",
)
@click.option(
    "--days",
    type=int,
    default=TOKEN_LIFETIME.days,
    show_default=True,
    help="Days until the token expires (1 to 366).",
)
def tokens_create(email, scope, days):
    """Print a new API token for a user (shown once; only its hash is kept)."""
    user = user_by_email(db.session, email)
    if user is None or not user.active:
        fail(f"no active user {email}")
    with step() as session:
        try:
            token = issue_token(
                session, user, actor=CLI_ACTOR, scope=scope, lifetime=dt.timedelta(days=days)
            )
        except UserError as exc:
            fail(str(exc))
    click.echo(token)


@tokens_cli.command("list")
@click.argument("email", required=False)
def tokens_list(email):
    """The API tokens (of one user, or all): prefix, owner, scope, expiry, state."""
    query = sa.select(ApiToken).order_by(ApiToken.id)
    if email:
        user = user_by_email(db.session, email)
        if user is None:
            fail(f"no user {email}")
        query = query.where(ApiToken.user_id == user.id)
    now = utcnow()
    for row in db.session.scalars(query):
        state = "revoked" if row.revoked_at else "expired" if row.expires_at <= now else "active"
        click.echo(
            f"{row.prefix}…  {row.user.email:<28} {row.scope:<5}  "
            f"expires {row.expires_at:%Y-%m-%d}  {state}"
        )


@tokens_cli.command("revoke")
@click.argument("prefix")
def tokens_revoke(prefix):
    """Revoke the token that starts with PREFIX (as `tokens list` shows it)."""
    rows = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.prefix == prefix.rstrip("…").strip())
    ).all()
    if len(rows) != 1:
        fail(f"no token with prefix {prefix}" if not rows else f"{prefix} names several tokens")
    with step() as session:
        try:
            revoke_token(session, rows[0], actor=CLI_ACTOR)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"Revoked token {rows[0].prefix}… of {rows[0].user.email}.")


@demo_cli.command("seed")
def demo_seed():
    """A demo agency: users of every role, three clients, cases in every status."""
    with step() as session:
        created = seed(session, demo_paperwork())
        created += seed_early_out(session)  # the early-out accounts (demo/early_out_seed.py)
    if created:
        click.echo(f"Seeded the demo agency: {created} cases.")
    else:
        click.echo("The demo agency is already there; nothing changed.")
    for role, email, password in DEMO_LOGINS:
        click.echo(f"  {role:<11} {email:<28} {password}")
    example = portal_example(db.session)
    if example:
        reference, last_name, postal_code = example
        click.echo(
            f"  debtor      /portal/login: reference {reference}, "
            f"last name {last_name}, ZIP {postal_code[:5]}"
        )


def demo_paperwork() -> Paperwork:
    """The demo's notices and statements made as the daily and monthly runs make them."""
    return Paperwork(send_notice=send_notice, render_statement=render_statement, zone=agency_zone())


_FORK_SAFE: set[int] = set()


def _own_connections_in_forks(engine) -> None:
    """The worker forks a process for each job: in it, the pool inherited from this process is
    dropped without closing its connections (they are this process's) and the job opens its
    own. Two processes on one PostgreSQL session collide, over its prepared statements first
    (SQLAlchemy's recipe for os.fork)."""
    if id(engine) not in _FORK_SAFE:
        _FORK_SAFE.add(id(engine))
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(queues, burst):
    """Run an RQ worker with the app's context (needs REDIS_URL)."""
    runner = current_app.extensions["recourse.jobs"]
    if not isinstance(runner, RQRunner):
        fail("REDIS_URL is not set: without it jobs run in-process and need no worker")
    names = list(queues) or list(QUEUES)
    unknown = set(names) - set(QUEUES)
    if unknown:
        fail(f"unknown queue(s): {', '.join(sorted(unknown))}; known: {', '.join(QUEUES)}")
    swept = sweep()  # what was asked for while Redis was away
    if swept:
        click.echo(f"Sent {swept} job(s) that waited in the outbox.", err=True)
    db.session.remove()
    _own_connections_in_forks(db.engine)
    Worker(names, connection=runner.connection).work(burst=burst)


@jobs_cli.command("sweep")
@click.option(
    "--older-than",
    type=click.IntRange(0),
    default=int(SWEEP_AFTER.total_seconds()),
    show_default=True,
    help="Seconds a job has waited in the outbox.",
)
def jobs_sweep(older_than):
    """Send again the jobs that waited in the outbox (Redis was away when they were asked
    for); without Redis, run them here. Exit 1 if Redis is still away."""
    try:
        count = sweep(dt.timedelta(seconds=older_than))
    except RedisError as exc:
        fail(f"Redis is still away ({exc}); the jobs wait in the outbox")
    click.echo(f"{count} job(s) sent from the outbox.")


@referrals_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--client", "client_code", required=True, help="The referring client's code.")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The referral date ages are counted to (default: today).",
)
@click.option("--dry-run", is_flag=True, help="Check the file and report; import nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--attest-early-out",
    is_flag=True,
    help="The client attests the file's early_out accounts are not in default under its terms.",
)
def referrals_import(file, client_code, as_of, dry_run, as_json, attest_early_out):
    """Import a referral file (CSV or XLSX): exit 0 when read, 2 when refused whole."""
    client = client_by_code(db.session, client_code)
    if client is None:
        fail(f"no client with code {client_code}")
    as_of = as_of.date() if as_of else agency_today()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Importing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    document = None
    try:
        with step() as session:
            # Copied into the document store in chunks, and read from there as a stream.
            with Path(file).open("rb") as stream:
                document, data = store_referral_file(stream, Path(file).name, uploaded_by_id=None)
            result = import_file(
                session,
                client,
                data,
                Path(file).name,
                as_of=as_of,
                actor=CLI_ACTOR,
                source="cli",
                dry_run=dry_run,
                progress=progress,
                early_out_attested=attest_early_out,
                document=document,
                keep_references=as_json,  # only --json prints them
            )
    except FileRefused as exc:
        if document is not None:
            forget(document)  # its record was rolled back with the step
        fail(f"the file was refused: {exc}", code=2)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    verb = "would be imported" if dry_run else "imported"
    click.echo(f"{result.accepted} row(s) {verb}; {len(result.rejected)} rejected.")
    for r in result.rejected:
        click.echo(f"  row {r['row']}, {r['column'] or 'row'}: {r['reason']}")


@offers_cli.command("expire")
def offers_expire():
    """Mark every live offer past its date expired (run daily)."""
    with step() as session:
        count = expire_offers(session, agency_today(), actor=CLI_ACTOR)
    click.echo(f"{count} offer(s) expired.")


def init_app(app: Flask) -> None:
    for group in (
        clients_cli,
        users_cli,
        tokens_cli,
        demo_cli,
        referrals_cli,
        offers_cli,
        jobs_cli,
    ):
        app.cli.add_command(group)
    app.cli.add_command(worker)
    app.cli.add_command(statements_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(notices_cli)
    app.cli.add_command(earlyout_cli)
    app.cli.add_command(promises_cli)
    app.cli.add_command(plans_cli)
    app.cli.add_command(config_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(stripe_cli)
