"""`flask statements run` (SPEC §10) and `flask statements month-end` for cron."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from cases import audit
from cases.clients import client_by_code
from cases.model import utcnow
from correspondence.statement_mail import issue_statement, run_month_end
from payments.statements import (
    StatementError,
    clients_for_month,
    month_has_ended,
    parse_month,
)
from shell.extensions import db
from shell.timezone import agency_zone
from shell.unit_of_work import step

CLI_ACTOR = audit.Actor(None, "cli")

statements_cli = AppGroup("statements", help="Monthly contingency-fee statements.")


def fail(message: str, code: int = 1):
    """Stop with the message; inside a `step()`, what the step wrote is rolled back."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@statements_cli.command("run")
@click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
@click.option("--client", "client_code", default=None, help="Only this client's statement.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write the PDF and CSV files (default: instance/statements).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the statements as JSON.")
def run(month_text, client_code, out_dir, as_json):
    """Issue each client's statement for a month that has ended (or return the one issued).

    Exit 0 when every statement asked for exists, 1 otherwise. Progress goes to stderr.
    """
    try:
        month = parse_month(month_text)
    except StatementError as exc:
        fail(str(exc))
    zone = agency_zone()
    if not month_has_ended(month, zone, utcnow()):
        fail(
            f"{month} has not ended yet in {zone.key}: "
            f"its statements can be issued from {month.next_start.isoformat()}"
        )
    if client_code:
        client = client_by_code(db.session, client_code.strip().upper())
        if client is None:
            fail(f"no client with code {client_code}")
        clients = [client]
    else:
        clients = clients_for_month(db.session, month, zone)
    out = Path(out_dir) if out_dir else Path(current_app.instance_path) / "statements"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror}")
    items, failed = [], 0
    started = time.perf_counter()
    for position, client in enumerate(clients, 1):
        try:
            with step() as session:  # each client's statement is its own unit of work
                result = issue_statement(session, client, month, actor=CLI_ACTOR)
        except StatementError as exc:
            failed += 1
            click.echo(f"Error: {client.code}: {exc}", err=True)
            continue
        statement = result.statement
        pdf_path = (out / f"{statement.number}.pdf").resolve()
        csv_path = (out / f"{statement.number}.csv").resolve()
        pdf_path.write_bytes(statement.pdf)
        csv_path.write_bytes(statement.csv.encode("utf-8"))
        items.append({**statement.summary(), "pdf": str(pdf_path), "csv": str(csv_path)})
        click.echo(
            f"[{position}/{len(clients)}] {statement.number} "
            f"{'issued' if result.created else 'already issued, unchanged'} "
            f"({len(statement.lines)} lines, {time.perf_counter() - started:.1f}s)",
            err=True,
        )
    if as_json:
        click.echo(json.dumps({"statements": items}))
    else:
        for item in items:
            click.echo(
                f"{item['number']}: collected {item['collected_by_agency'] / 100:,.2f} by the "
                f"agency, {item['collected_by_client'] / 100:,.2f} directly; fees "
                f"{item['fees'] / 100:,.2f}; net remittance {item['net_remittance'] / 100:,.2f}"
                f"\n  {item['pdf']}\n  {item['csv']}"
            )
        if not items and not failed:
            click.echo(f"No client statements to issue for {month}.")
    if failed:
        sys.exit(1)


@statements_cli.command("month-end")
def month_end():
    """Issue last month's statements once it has ended (run it daily from cron)."""
    with step() as session:
        numbers = run_month_end(session)
    click.echo(f"{len(numbers)} statement(s) for last month: {', '.join(numbers) or 'none'}")
