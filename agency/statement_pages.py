"""Statements at the agency (/agency/statements), for admins: every client's statements, each
with the remittances paid against it; and a month's statements issued from the page as a run
(/agency/statements/runs, admins and supervisors), with its progress as it goes."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

import correspondence.statement_run  # noqa: F401 (registers the run's job handler)
from agency import staff
from cases import audit
from cases.clients import Client
from cases.model import utcnow
from correspondence import statement_mail
from payments.remittance import (
    REMIT_METHODS,
    Remittance,
    RemittanceError,
    left_to_settle,
    record_remittance,
    settled_so_far,
)
from payments.statements import (
    Statement,
    StatementError,
    StatementRun,
    StatementRunItem,
    last_ended_month,
    parse_month,
    run_progress,
    start_run,
)
from shell.extensions import db
from shell.money import MoneyField, format_cents
from shell.security import roles_required
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import attempt


class RemitForm(FlaskForm):
    paid_on = DateField("Date paid", validators=[InputRequired()])
    method = SelectField("Method", choices=list(REMIT_METHODS))
    reference = StringField(
        "Reference (ACH trace, wire or check number)", validators=[DataRequired(), Length(max=80)]
    )
    amount = MoneyField("Amount", validators=[InputRequired()])


class RunForm(FlaskForm):
    month = StringField("Month (YYYY-MM)", validators=[DataRequired(), Length(max=7)])
    clients = StringField(
        "Only these clients (codes, separated by commas; leave empty for every client)",
        validators=[Length(max=500)],
    )

    def client_codes(self) -> list[str]:
        return [c.strip().upper() for c in (self.clients.data or "").split(",") if c.strip()]


def statement_by_number(number: str) -> Statement:
    statement = db.session.scalar(
        sa.select(Statement)
        .options(joinedload(Statement.client))
        .where(Statement.number == number.upper())
    )
    return statement or abort(404)


@staff.bp.get("/statements")
@roles_required("admin")
def statements():
    query = sa.select(Statement).join(Client, Client.id == Statement.client_id)
    month = request.args.get("month", "").strip()
    code = request.args.get("client", "").strip().upper()
    if month:
        try:
            query = query.where(Statement.month == str(parse_month(month)))
        except StatementError as exc:
            flash(str(exc), "error")
    if code:
        query = query.where(Client.code == code)
    rows = db.session.scalars(query.order_by(Statement.month.desc(), Client.code).limit(500)).all()
    return render_template(
        "agency/statements.html",
        statements=rows,
        settled=settled_so_far(db.session, [s.id for s in rows]),
        month=month,
        code=code,
    )


def _statement_page(statement: Statement, form: RemitForm, status: int = 200):
    remittances = db.session.scalars(
        sa.select(Remittance).where(Remittance.statement_id == statement.id).order_by(Remittance.id)
    ).all()
    return render_template(
        "agency/statement.html",
        statement=statement,
        remittances=remittances,
        left=left_to_settle(db.session, statement),
        late_lines=sum(1 for line in statement.lines if line.late),
        form=form,
    ), status


@staff.bp.get("/statements/<number>")
@roles_required("admin")
def statement(number: str):
    statement = statement_by_number(number)
    form = RemitForm()
    left = left_to_settle(db.session, statement)
    if left:
        form.amount.data = abs(left)
        form.paid_on.data = agency_today()
    return _statement_page(statement, form)


@staff.bp.post("/statements/<number>/remittances")
@roles_required("admin")
def remit(number: str):
    statement = statement_by_number(number)
    form = RemitForm()
    if not form.validate_on_submit():
        return _statement_page(statement, form, 422)
    try:
        with attempt() as session:
            remittance = record_remittance(
                session,
                statement,
                paid_on=form.paid_on.data,
                method=form.method.data,
                reference=form.reference.data,
                amount_cents=form.amount.data,
                today=agency_today(),
                actor=audit.Actor.user(current_user),
            )
    except RemittanceError as exc:
        flash(f"Not recorded: {exc}.", "error")
        return _statement_page(statement, form, 422)
    direction = "to" if remittance.amount_cents > 0 else "from"
    flash(
        f"Recorded ${format_cents(abs(remittance.amount_cents))} {direction} "
        f"{statement.client.code} for {statement.number}.",
        "success",
    )
    return redirect(url_for("staff.statement", number=statement.number))


@staff.bp.get("/statements/<number>.<any(pdf, csv):kind>")
@roles_required("admin")
def statement_file(number: str, kind: str):
    return statement_mail.statement_file(statement_by_number(number), kind)


# --- a month's run, from the page ---------------------------------------------------------------

RUNNERS = ("admin", "supervisor")


def _runs_page(form: RunForm, status: int = 200):
    runs = db.session.scalars(sa.select(StatementRun).order_by(StatementRun.id.desc()).limit(20))
    return render_template(
        "agency/statement_runs.html",
        form=form,
        runs=[(run, run_progress(db.session, run)) for run in runs],
        last_month=last_ended_month(agency_zone(), utcnow()),
    ), status


@staff.bp.get("/statements/runs")
@roles_required(*RUNNERS)
def statement_runs():
    form = RunForm()
    form.month.data = str(last_ended_month(agency_zone(), utcnow()))
    return _runs_page(form)


@staff.bp.post("/statements/runs")
@roles_required(*RUNNERS)
def start_statement_run():
    form = RunForm()
    if not form.validate_on_submit():
        return _runs_page(form, 422)
    try:
        with attempt() as session:
            run = start_run(
                session,
                parse_month(form.month.data),
                client_codes=form.client_codes(),
                zone=agency_zone(),
                now=utcnow(),
                actor=audit.Actor.user(current_user),
            )
    except StatementError as exc:
        flash(f"Not started: {exc}.", "error")
        return _runs_page(form, 422)
    return redirect(url_for("staff.statement_run", run_id=run.id), 303)


def _run(run_id: int) -> StatementRun:
    return db.session.get(StatementRun, run_id) or abort(404)


@staff.bp.get("/statements/runs/<int:run_id>")
@roles_required(*RUNNERS)
def statement_run(run_id: int):
    run = _run(run_id)
    items = db.session.scalars(
        sa.select(StatementRunItem)
        .options(joinedload(StatementRunItem.client), joinedload(StatementRunItem.statement))
        .where(StatementRunItem.run_id == run.id)
        .order_by(StatementRunItem.id)
    ).all()
    return render_template(
        "agency/statement_run.html",
        run=run,
        items=items,
        progress=run_progress(db.session, run),
    )


@staff.bp.get("/statements/runs/<int:run_id>.json")
@roles_required(*RUNNERS)
def statement_run_status(run_id: int):
    return jsonify(run_progress(db.session, _run(run_id)).as_json())
