"""`flask earlyout run|terms` (docs/cli.md): the early-out run (correspondence.early_out_messages)
from the command line or on RQ's cron scheduler, and a client's early-out terms."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from cases import audit
from cases.clients import client_by_code
from cases.early_out import EarlyOutError, parse_cadence, set_terms, terms_of
from correspondence.early_out_messages import RUN_DUE, run_due
from shell.job_runner import rq_entry
from shell.unit_of_work import step

# Hourly, a quarter past: each run sends what the debtor's hours allow at that hour.
SCHEDULE = "15 * * * *"
CLI_ACTOR = audit.Actor(None, "cli")

earlyout_cli = AppGroup("earlyout", help="Early-out: reminders in the client's name.")


def register_cron(scheduler) -> None:
    """Add the hourly early-out run to RQ's cron scheduler."""
    scheduler.register(rq_entry, "default", args=(RUN_DUE.name,), cron=SCHEDULE, name="earlyout")


@earlyout_cli.command("run")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day to act for, in the agency's time zone (default: today).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"sent": N, "converted": [...]}.')
def earlyout_run(as_of, as_json):
    """Convert the early-out accounts due and send the reminders due now (run it hourly)."""
    with step() as session:
        run = run_due(session, as_of.date().isoformat() if as_of else None)
    if as_json:
        click.echo(json.dumps(run.as_json()))
        return
    click.echo(
        f"{run.today}: {len(run.sent)} reminder(s) sent, {len(run.held)} held back, "
        f"{len(run.converted)} account(s) converted to collection."
    )
    for line in run.held:
        click.echo(f"  held: {line}")
    for reference in run.converted:
        click.echo(f"  converted: {reference}")


@earlyout_cli.command("terms")
@click.option("--client", "client_code", required=True, help="The client's code.")
@click.option("--cadence", help='Steps as DAY:CHANNEL[:TONE], like "1:email,7:text,15:email".')
@click.option("--convert-after", type=int, help="Days past due an account converts on.")
@click.option("--reply-to", help="The client's reply address on early-out emails.")
@click.option("--logo", help="The client's logo: a path under static/.")
@click.option("--fee", type=click.Choice(["percent", "flat"]), help="The early-out fee kind.")
@click.option("--fee-percent", type=click.FloatRange(0, 50), help="Percent of what is paid.")
@click.option("--flat-fee", type=click.FloatRange(0, 1000), help="Dollars per account placed.")
@click.option("--plan-installments", type=int, help="Up to how many plan installments (0: none).")
@click.option(
    "--plan-frequency", type=click.Choice(["monthly", "biweekly"]), help="How often they fall due."
)
def earlyout_terms(
    client_code,
    cadence,
    convert_after,
    reply_to,
    logo,
    fee,
    fee_percent,
    flat_fee,
    plan_installments,
    plan_frequency,
):
    """Show a client's early-out terms, or change them (an admin's edit)."""
    with step() as session:
        client = client_by_code(session, client_code)
        if client is None:
            raise click.ClickException(f"no client with code {client_code}")
        changes = {
            "cadence": parse_cadence(cadence) if cadence else None,
            "convert_after_days": convert_after,
            "reply_to": reply_to,
            "logo_path": logo,
            "fee_kind": fee,
            "fee_bps": round(fee_percent * 100) if fee_percent is not None else None,
            "flat_fee_cents": round(flat_fee * 100) if flat_fee is not None else None,
            "plan_max_installments": plan_installments,
            "plan_frequency": plan_frequency,
        }
        try:
            terms = (
                set_terms(session, client, actor=CLI_ACTOR, **changes)
                if any(v is not None for v in changes.values())
                else terms_of(session, client.id)
            )
        except EarlyOutError as exc:
            raise click.ClickException(str(exc)) from None
        shown = {
            "client": client.code,
            "cadence": terms.cadence,
            "convert_after_days": terms.convert_after_days,
            "reply_to": terms.reply_to,
            "logo": terms.logo_path,
            "fee": terms.fee_kind,
            "fee_bps": terms.fee_bps,
            "flat_fee_cents": terms.flat_fee_cents,
            "plan_max_installments": terms.plan_max_installments,
            "plan_frequency": terms.plan_frequency,
        }
    click.echo(json.dumps(shown))
