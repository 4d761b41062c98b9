"""The admin's reports (/agency/reports): each a server-rendered SVG chart, its figures as a
table, and a CSV export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, abort, render_template
from markupsafe import Markup

from agency import staff
from cases.csvsafe import write_csv
from correspondence.charts import Series, bar_chart, grouped_bar_chart, hbar_chart, line_chart
from payments import reports
from payments.statements import Month, dollars, parse_month
from shell.extensions import db
from shell.security import roles_required
from shell.timezone import agency_today, agency_zone

VINTAGE_AGES = 12  # months since placement shown on the vintage curves


@dataclass
class Report:
    name: str
    title: str
    header: list[str]
    rows: list[list]
    money_columns: set[int]
    chart: Markup
    about: str = ""

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


def whole_percent(bps: int) -> str:
    return f"{bps // 100}%"


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


def vintages(last: Month) -> Report:
    data = reports.vintages(db.session, last)
    ages = list(range(VINTAGE_AGES))
    shown = [v for v in data if v.placed]
    return Report(
        "vintages",
        "Liquidation by placement month",
        ["placement_month", "cases", "placed", *(f"month_{a}" for a in ages)],
        [
            [
                v.month,
                v.cases,
                v.placed,
                *("" if v.rate_bps(a) is None else percent(v.rate_bps(a)) for a in ages),
            ]
            for v in data
        ],
        {2},
        line_chart(
            [str(a) for a in ages],
            [Series(short(v.month), [v.rate_bps(a) for a in ages]) for v in shown],
            title="Cumulative share of the placed amount collected, by months since placement",
            fmt=whole_percent,
            high=-(-max([1, *(v.rate_bps(a) or 0 for v in shown for a in ages)]) // 1000) * 1000,
            axis="months since placement (0 = the placement month)",
        ),
        about="Each line is the cases placed in one month: the share of the amount placed with "
        "them collected so far (by the agency and directly, net of reversals), month by month "
        "since placement. A younger vintage has fewer months.",
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
    data = reports.collector_performance(db.session, since, agency_zone(), today=agency_today())
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
        about="Promises due are those whose date has passed or that were paid; a promise is kept "
        "when the payments on its case from the day it was made reach its amount by its date.",
    )


def promises(last: Month) -> Report:
    since = reports.months(last)[0].start
    data = reports.promises_by_collector(
        db.session, since, today=agency_today(), zone=agency_zone()
    )
    return Report(
        "promises",
        f"Promises made and money collected per collector since {since.isoformat()}",
        [
            "collector",
            "promises_made",
            "promised",
            "kept",
            "kept_amount",
            "broken",
            "broken_amount",
            "open",
            "open_amount",
            "kept_percent",
            "collected",
        ],
        [
            [
                r.email,
                r.made,
                r.made_cents,
                r.kept,
                r.kept_cents,
                r.broken,
                r.broken_cents,
                r.open,
                r.open_cents,
                percent(r.kept_rate_bps),
                r.collected,
            ]
            for r in data
        ],
        {2, 4, 6, 8, 10},
        grouped_bar_chart(
            [r.email.split("@")[0] for r in data],
            [
                Series("Promised", [r.made_cents for r in data]),
                Series("Kept", [r.kept_cents for r in data]),
                Series("Collected", [r.collected for r in data]),
            ],
            title="Promised, kept and collected per collector",
        ),
        about="Promises made in the period (count and amount) and what became of them: kept "
        "(paid in full by their date), broken (their date passed first) or still open; against "
        "the money collected on each collector's assigned cases in the same period. "
        "Kept percent is kept ÷ (kept + broken).",
    )


def alerts(last: Month) -> Report:
    data = reports.compliance_alerts(db.session, last, agency_zone())
    return _counts("alerts", "Compliance alerts raised and resolved", ("Raised", "Resolved"), data)


def disputes(last: Month) -> Report:
    data = reports.disputes(db.session, last, agency_zone())
    return _counts("disputes", "Disputes opened and resolved", ("Opened", "Resolved"), data)


def _counts(
    name: str, title: str, legend: tuple[str, str], data: list[reports.MonthCounts]
) -> Report:
    return Report(
        name,
        title,
        ["month", "opened", "resolved"],
        [[r.month, r.opened, r.resolved] for r in data],
        set(),
        grouped_bar_chart(
            [short(r.month) for r in data],
            [
                Series(legend[0], [r.opened for r in data]),
                Series(legend[1], [r.resolved for r in data]),
            ],
            title=f"{title} per month",
            fmt=count,
        ),
    )


REPORTS: dict[str, Callable[[Month], Report]] = {
    "collections": collections,
    "liquidation": liquidation,
    "vintages": vintages,
    "aging": aging,
    "collectors": collectors,
    "promises": promises,
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
