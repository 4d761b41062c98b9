"""The client area (/client): a creditor business follows its own cases, and only those."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from agency.extensions import db
from agency.security import require_roles
from cases.case import Case
from payments.ledger import LedgerEntry, balance_cents, balances

bp = Blueprint("client_area", __name__, url_prefix="/client")
bp.before_request(require_roles("client"))

PAGE_SIZE = 50


def own_case(reference: str) -> Case:
    """The signed-in client's case with this reference, or 404 (never another client's)."""
    case = db.session.scalar(
        sa.select(Case).where(
            Case.reference == reference.upper(), Case.client_id == current_user.client_id
        )
    )
    if case is None:
        abort(404)
    return case


@bp.get("/")
def dashboard():
    counts = dict(
        db.session.execute(
            sa.select(Case.status, sa.func.count())
            .where(Case.client_id == current_user.client_id)
            .group_by(Case.status)
        ).all()
    )
    return render_template("client/dashboard.html", counts=counts)


@bp.get("/cases")
def cases():
    page = max(request.args.get("page", 1, type=int), 1)
    query = (
        sa.select(Case)
        .where(Case.client_id == current_user.client_id)
        .order_by(Case.created_at.desc(), Case.id.desc())
    )
    rows = db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    owed = balances(db.session, [c.id for c in rows])
    return render_template(
        "client/cases.html", cases=rows, balances=owed, page=page, page_size=PAGE_SIZE
    )


@bp.get("/cases/<reference>")
def case(reference: str):
    case = own_case(reference)
    entries = db.session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id).order_by(LedgerEntry.id)
    ).all()
    return render_template(
        "client/case.html", case=case, entries=entries, balance=balance_cents(db.session, case.id)
    )
