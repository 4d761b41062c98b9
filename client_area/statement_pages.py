"""The client's own statements (/client/statements): the list and each PDF and CSV. Every
lookup is the signed-in client's own (a 404 otherwise)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, render_template
from flask_login import current_user

from client_area.views import bp
from correspondence import statement_mail
from payments.remittance import settled_so_far
from payments.statements import Statement
from shell.extensions import db


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


@bp.get("/statements")
def client_statements():
    rows = db.session.scalars(
        sa.select(Statement)
        .where(Statement.client_id == current_user.client_id)
        .order_by(Statement.month.desc())
    ).all()
    return render_template(
        "client/statements.html",
        statements=rows,
        settled=settled_so_far(db.session, [s.id for s in rows]),
    )


@bp.get("/statements/<number>.<any(pdf, csv):kind>")
def client_statement_file(number: str, kind: str):
    return statement_mail.statement_file(own_statement(number), kind)
