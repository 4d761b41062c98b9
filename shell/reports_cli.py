"""`flask reports rebuild`: recompute the reports' running totals (cases/report_totals.py) from
the ledger, the cases and the contacts, after a load that bypassed the app (a restore of some tables, a
COPY). The app keeps them with every write; this is a whole scan, never needed otherwise."""

from __future__ import annotations

import time

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from cases import report_totals
from shell.extensions import db
from shell.unit_of_work import step

reports_cli = AppGroup("reports", help="The reports' running totals.")


@reports_cli.command("rebuild")
def rebuild_command():
    """Recompute the reports' totals from the ledger and the contacts (one transaction; the pages read the old
    totals until it commits)."""
    started = time.perf_counter()
    with step():
        report_totals.rebuild(db.session)
        rows = {
            model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in report_totals.TABLES
        }
    click.echo(
        "rebuilt the reports' totals in "
        f"{time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{name} {count:,} rows" for name, count in rows.items())
    )
