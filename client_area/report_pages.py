"""The client's reports (/client/reports): liquidation by placement month and the aging of its
open balances, each a chart, its figures as a table, and a CSV. Only the client's own cases."""

from __future__ import annotations

from flask import Response, abort, render_template
from flask_login import current_user

from cases.csvsafe import write_csv
from client_area import report_figures as reports
from client_area.views import bp
from correspondence.charts import bar_chart, hbar_chart
from payments.statements import dollars, parse_month
from shell.extensions import db
from shell.timezone import agency_today


def percent(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def _short(month: str) -> str:
    return parse_month(month).start.strftime("%b %y")


def _liquidation() -> tuple[list[str], list[list]]:
    rows = reports.liquidation_by_placement_month(db.session, current_user.client_id)
    return ["placement_month", "cases", "placed", "collected", "liquidation_percent"], [
        [r.month, r.cases, dollars(r.placed), dollars(r.collected), percent(r.rate_bps)]
        for r in rows
    ]


def _aging() -> tuple[list[str], list[list]]:
    rows = reports.aging(db.session, current_user.client_id, agency_today())
    return ["days_past_due", "open_cases", "balance"], [
        [b.label, b.cases, dollars(b.balance)] for b in rows
    ]


@bp.get("/reports")
def reports_page():
    client_id = current_user.client_id
    months = reports.liquidation_by_placement_month(db.session, client_id)
    bands = reports.aging(db.session, client_id, agency_today())
    shown = list(reversed(months[:12]))  # the chart: the last 12 placement months, oldest first
    return render_template(
        "client/reports.html",
        months=months,
        bands=bands,
        percent=percent,
        liquidation_chart=bar_chart(
            [(_short(m.month), m.rate_bps) for m in shown],
            title="Collected ÷ placed, by the month the accounts were placed",
            fmt=percent,
        ),
        placed_chart=bar_chart(
            [(_short(m.month), m.collected) for m in shown],
            title="Collected on each month's placements",
        ),
        aging_chart=hbar_chart(
            [(b.label, b.balance) for b in bands], title="Open balances by days past due"
        ),
    )


@bp.get("/reports/<name>.csv")
def report_csv(name: str):
    makers = {"liquidation": _liquidation, "aging": _aging}
    if name not in makers:
        abort(404)
    header, rows = makers[name]()
    filename = f"{current_user.client.code.lower()}-{name}-{agency_today().isoformat()}.csv"
    return Response(
        write_csv(rows, header),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
