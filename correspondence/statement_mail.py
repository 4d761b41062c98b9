"""Issuing statements from the app: the PDF rendered from its template, and the client's
users told by email. Used by `flask statements run`, the monthly job and the benchmark."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Response, current_app
from sqlalchemy.orm import Session

from cases import audit
from cases.clients import Client
from cases.jobs import declare, enqueue, handles
from cases.messages import DELIVER_EMAIL, OutboundMessage
from cases.model import utcnow
from cases.users import User
from correspondence.charts import bar_chart
from correspondence.mail import render_email
from correspondence.pdf import agency_letterhead, render_pdf
from payments.statements import (
    Issued,
    Month,
    Statement,
    StatementDoc,
    StatementError,
    clients_for_month,
    document,
    issue,
    last_ended_month,
    parse_month,
)
from shell.timezone import agency_zone

MONTH_END = declare("statements.month_end")

log = logging.getLogger(__name__)


def money(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}${abs(cents) / 100:,.2f}"


def render_statement(doc: StatementDoc) -> bytes:
    points = [(parse_month(h["month"]).start.strftime("%b %y"), h["cents"]) for h in doc.history]
    chart = bar_chart(points, title=f"Collections by month, 12 months to {doc.period_label}")
    return render_pdf("pdf/statement.html", s=doc, agency=agency_letterhead(), chart=chart)


def issue_statement(
    session: Session, client: Client, month: Month, *, actor: audit.Actor
) -> Issued:
    """Issue (or find) one statement; a new one is emailed to the client's users."""
    result = issue(
        session,
        client,
        month,
        zone=agency_zone(),
        now=utcnow(),
        actor=actor,
        render_pdf=render_statement,
    )
    if result.created:
        notify_client_users(session, result)
    return result


def notify_client_users(session: Session, issued: Issued) -> list[OutboundMessage]:
    statement = issued.statement
    users = session.scalars(
        sa.select(User).where(
            User.client_id == statement.client_id, User.role == "client", User.active.is_(True)
        )
    ).all()
    base = current_app.config["APP_URL"]
    subject, body = render_email(
        "statement_issued",
        s=document(statement, agency_zone()),
        agency=agency_letterhead(),
        m=money,
        url=f"{base}/client/statements",
    )
    messages = []
    for user in users:
        message = OutboundMessage(case_id=None, to_address=user.email, subject=subject, body=body)
        session.add(message)
        session.flush()
        enqueue(session, DELIVER_EMAIL, message.id)
        messages.append(message)
    return messages


@handles(MONTH_END.name)
def run_month_end(session: Session) -> list[str]:
    """The monthly job: issue every client's statement for the last month that has ended in
    the agency's time zone. Safe to run any day and any number of times: issued statements
    are returned unchanged. A client refused (see StatementError) does not stop the others."""
    zone = agency_zone()
    month = last_ended_month(zone, utcnow())
    numbers = []
    for client in clients_for_month(session, month, zone):
        try:
            with session.begin_nested():
                numbers.append(
                    issue_statement(session, client, month, actor=audit.SYSTEM).statement.number
                )
        except StatementError as exc:
            log.warning("statement for %s %s not issued: %s", client.code, month, exc)
    return numbers


def statement_file(statement: Statement, kind: str) -> Response:
    """The statement's PDF or CSV, as a download."""
    if kind == "pdf":
        body, mimetype = statement.pdf, "application/pdf"
    else:
        body, mimetype = statement.csv, "text/csv"
    name = f"{statement.number}.{kind}"
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
