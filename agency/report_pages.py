"""The admin's reports (/agency/reports): each a server-rendered SVG chart, its figures as a
table, and a CSV export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, abort, render_template
from markupsafe import Markup

from agency import staff
from cases.csvsafe import write_csv
from correspondence.charts import bar_chart, hbar_chart
from payments import reports
from payments.statements import Month, dollars, parse_month
from shell.extensions import db
from shell.security import roles_required
from shell.timezone import agency_today, agency_zone


@dataclass
class Report:
    name: str
    title: str
    header: list[str]
    rows: list[list]
    money_columns: set[int]
    chart: Markup

    def csv(self) -> str:
        return write_csv(
            [
                [dollars(v) if i in self.money_columns else v for i, v in enumerate(row)]
                for row in self.rows
            ],
            self.header,
        )


def percent(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def short(month: str) -> str:
    """'2026-10' -> 'Oct 26', a chart's label."""
    return parse_month(month).start.strftime("%b %y")


def count(n: int) -> str:
    return f"{n:,}"


def collections(last: Month) -> Report:
    data = reports.collections_by_month(db.session, last)
    return Report(
        "collections",
        "Collections by month",
        ["month", "collected_by_agency", "collected_by_client", "fees"],
        [[r.month, r.by_agency, r.by_client, r.fees] for r in data],
        {1, 2, 3},
        bar_chart(
            [(short(r.month), r.total) for r in data],
            title="Collections by month (agency and direct), last 12 months",
        ),
    )


def liquidation(last: Month) -> Report:
    data = reports.liquidation_by_client(db.session)
    return Report(
        "liquidation",
        "Liquidation rate per client (collected ÷ placed)",
        ["client", "name", "placed", "collected", "liquidation_percent"],
        [[r.code, r.name, r.placed, r.collected, percent(r.rate_bps)] for r in data],
        {2, 3},
        hbar_chart(
            [(r.code, r.rate_bps) for r in data],
            title="Liquidation rate per client",
            fmt=percent,
        ),
    )


def aging(last: Month) -> Report:
    data = reports.aging(db.session, agency_today())
    return Report(
        "aging",
        "Aging of open balances (days past due today)",
        ["days_past_due", "open_cases", "balance"],
        [[b.label, b.cases, b.balance] for b in data],
        {2},
        hbar_chart([(b.label, b.balance) for b in data], title="Open balances by age"),
    )


def collectors(last: Month) -> Report:
    since = reports.months(last)[0].start
    data = reports.collector_performance(db.session, since, agency_zone())
    return Report(
        "collectors",
        f"Collector performance since {since.isoformat()}",
        ["collector", "contacts", "promises_kept", "promises_due", "collected"],
        [[r.email, r.contacts, r.promises_kept, r.promises_due, r.collected] for r in data],
        {4},
        hbar_chart(
            [(r.email.split("@")[0], r.collected) for r in data],
            title="Amount collected on each collector's cases",
        ),
    )


def alerts(last: Month) -> Report:
    data = reports.compliance_alerts(db.session, last, agency_zone())
    return _counts("alerts", "Compliance alerts raised and resolved", data)


def disputes(last: Month) -> Report:
    data = reports.disputes(db.session, last, agency_zone())
    return _counts("disputes", "Disputes opened and resolved", data)


def _counts(name: str, title: str, data: list[reports.MonthCounts]) -> Report:
    points = [(short(r.month), r.opened) for r in data]
    return Report(
        name,
        title,
        ["month", "opened", "resolved"],
        [[r.month, r.opened, r.resolved] for r in data],
        set(),
        bar_chart(points, title=f"{title}: opened per month", fmt=count),
    )


REPORTS: dict[str, Callable[[Month], Report]] = {
    "collections": collections,
    "liquidation": liquidation,
    "aging": aging,
    "collectors": collectors,
    "alerts": alerts,
    "disputes": disputes,
}


@staff.bp.get("/reports")
@roles_required("admin")
def reports_page():
    last = Month.of(agency_today())
    return render_template(
        "agency/reports.html",
        reports=[build(last) for build in REPORTS.values()],
        still_open=reports.still_open(db.session),
        last=last,
    )


@staff.bp.get("/reports/<name>.csv")
@roles_required("admin")
def report_csv(name: str):
    build = REPORTS.get(name) or abort(404)
    report = build(Month.of(agency_today()))
    return Response(
        report.csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
