"""`flask notices send [--as-of] [--json]` (SPEC §10): the validation notices of `new` cases
and the mail house's print file (correspondence.notice_run), also run daily on RQ's cron."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from cases.documents import Document
from correspondence.notice_run import SEND_NOTICES, SYSTEM, send_notices
from shell.job_runner import rq_entry
from shell.timezone import agency_today
from shell.unit_of_work import step

SCHEDULE = "0 13 * * 1-5"  # business days, 13:00 UTC: the morning's print run, before the mail

notices_cli = AppGroup("notices", help="Validation notices.")


def register_cron(scheduler) -> None:
    """Add the daily notice run to RQ's cron scheduler."""
    scheduler.register(
        rq_entry, "default", args=(SEND_NOTICES.name,), cron=SCHEDULE, name="notices-send"
    )


def _path(session, document_id: int | None) -> str | None:
    if document_id is None:
        return None
    document = session.get(Document, document_id)
    return str(Path(current_app.config["DOCUMENT_STORE"]) / document.storage_key)


@notices_cli.command("send")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day the notices are sent, in the agency's time zone (default: today).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def notices_send(as_of, as_json):
    """Send the validation notices of `new` cases and write the print file and manifest."""
    today = as_of.date() if as_of else agency_today()
    with step() as session:
        result = send_notices(session, today=today, actor=SYSTEM)
        run = result.run
        summary = {
            "date": today.isoformat(),
            "sent": len(result.sent),
            "cases": result.sent,
            "held": result.held,
            "run": run.id if run else None,
            "print_file": _path(session, run.print_document_id) if run else None,
            "manifest": _path(session, run.manifest_document_id) if run else None,
            "alerts": result.alerts,
        }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{today}: {summary['sent']} notice(s) sent, {len(result.held)} held back.")
    if run:
        click.echo(f"  print file: {summary['print_file']}")
        click.echo(f"  manifest:   {summary['manifest']}")
    for line in result.held:
        click.echo(f"  held: {line}")
    for kind, references in result.alerts.items():
        if references:
            click.echo(f"  alert {kind}: {', '.join(references)}")
