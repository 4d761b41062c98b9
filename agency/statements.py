"""Statement pages: a client's own statements (/client/statements) and, for admins, every
statement with its remittances (/agency/statements). Routes register on the client-area and
staff blueprints, which check the role; every lookup here also checks the tenancy."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import joinedload
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from agency import client_area, staff
from agency.extensions import db
from agency.money import MoneyField, format_cents
from agency.security import roles_required
from agency.timezone import agency_today
from cases import audit
from cases.clients import Client
from cases.ledger import cents_sum
from payments.remittance import (
    REMIT_METHODS,
    Remittance,
    RemittanceError,
    left_to_settle,
    record_remittance,
)
from payments.statements import Statement, StatementError, parse_month


def download(statement: Statement, kind: str) -> Response:
    if kind == "pdf":
        body, mimetype = statement.pdf, "application/pdf"
    else:
        body, mimetype = statement.csv, "text/csv"
    name = f"{statement.number}.{kind}"
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def settled_so_far(statement_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(Remittance.statement_id, cents_sum(Remittance.amount_cents))
        .where(Remittance.statement_id.in_(statement_ids))
        .group_by(Remittance.statement_id)
    ).all()
    return dict(rows)


# --- the client area -----------------------------------------------------------------------


def own_statement(number: str) -> Statement:
    """The signed-in client's statement with this number, or 404 (never another client's)."""
    statement = db.session.scalar(
        sa.select(Statement).where(
            Statement.number == number.upper(), Statement.client_id == current_user.client_id
        )
    )
    if statement is None:
        abort(404)
    return statement


@client_area.bp.get("/statements")
def client_statements():
    rows = db.session.scalars(
        sa.select(Statement)
        .where(Statement.client_id == current_user.client_id)
        .order_by(Statement.month.desc())
    ).all()
    return render_template(
        "client/statements.html",
        statements=rows,
        settled=settled_so_far([s.id for s in rows]),
    )


@client_area.bp.get("/statements/<number>.<any(pdf, csv):kind>")
def client_statement_file(number: str, kind: str):
    return download(own_statement(number), kind)


# --- the agency (admins) -------------------------------------------------------------------


class RemitForm(FlaskForm):
    paid_on = DateField("Date paid", validators=[InputRequired()])
    method = SelectField("Method", choices=list(REMIT_METHODS))
    reference = StringField(
        "Reference (ACH trace, wire or check number)", validators=[DataRequired(), Length(max=80)]
    )
    amount = MoneyField("Amount", validators=[InputRequired()])


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
        settled=settled_so_far([s.id for s in rows]),
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
        remittance = record_remittance(
            db.session,
            statement,
            paid_on=form.paid_on.data,
            method=form.method.data,
            reference=form.reference.data,
            amount_cents=form.amount.data,
            today=agency_today(),
            actor=audit.Actor.user(current_user),
        )
    except RemittanceError as exc:
        db.session.rollback()
        flash(f"Not recorded: {exc}.", "error")
        return _statement_page(statement, form, 422)
    db.session.commit()
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
    return download(statement_by_number(number), kind)
