"""Portal pages. Debtors sign in with case reference, last name (or company) and ZIP."""

from __future__ import annotations

import datetime as dt
from functools import wraps

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from agency.extensions import db
from cases.case import OPEN_STATUSES, Case, case_by_reference
from cases.debtors import Debtor, fold
from cases.model import utcnow
from cases.users import clear_failures, locked_keys, record_failure
from payments.ledger import balances

bp = Blueprint("portal", __name__, url_prefix="/portal")

IDLE_LIMIT = dt.timedelta(minutes=15)
SESSION_KEY = "portal_debtor_id"
SEEN_KEY = "portal_seen_at"


class PortalSignInForm(FlaskForm):
    reference = StringField(
        "Case reference",
        validators=[DataRequired(), Length(max=20)],
        description="On your letter, like RC-2611-00042",
    )
    name = StringField("Last name, or company name", validators=[DataRequired(), Length(max=200)])
    postal_code = StringField("ZIP code", validators=[DataRequired(), Length(max=10)])


def signed_in_debtor() -> Debtor | None:
    debtor_id = session.get(SESSION_KEY)
    seen = session.get(SEEN_KEY)
    if debtor_id is None or seen is None:
        return None
    if utcnow() - dt.datetime.fromtimestamp(seen, dt.UTC) > IDLE_LIMIT:
        session.pop(SESSION_KEY, None)
        session.pop(SEEN_KEY, None)
        return None
    session[SEEN_KEY] = utcnow().timestamp()
    return db.session.get(Debtor, debtor_id)


def debtor_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.debtor = signed_in_debtor()
        if g.debtor is None:
            return redirect(url_for("portal.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def _matches(case: Case, name: str, postal_code: str) -> bool:
    debtor = case.debtor
    own = debtor.company_name if debtor.kind == "commercial" else debtor.last_name
    if not own or fold(own) != fold(name):
        return False
    zips = {a.postal_code[:5] for a in debtor.addresses}
    return postal_code.strip()[:5] in zips


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = PortalSignInForm()
    if form.validate_on_submit():
        reference = form.reference.data.strip().upper()
        keys = [f"portal:ref:{reference}", f"portal:ip:{request.remote_addr or 'unknown'}"]
        if locked_keys(db.session, keys):
            flash(
                "Too many attempts. For your security, sign-in is paused for 15 minutes.", "error"
            )
            return render_template("portal/login.html", form=form), 429
        case = case_by_reference(db.session, reference)
        if case is not None and _matches(case, form.name.data, form.postal_code.data):
            clear_failures(db.session, keys[:1])
            db.session.commit()
            session.clear()
            session[SESSION_KEY] = case.debtor_id
            session[SEEN_KEY] = utcnow().timestamp()
            return redirect(url_for("portal.home"))
        record_failure(db.session, keys)
        db.session.commit()
        flash("We could not find a case with those details. Please check your letter.", "error")
        return render_template("portal/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("portal/login.html", form=form), status


@bp.post("/logout")
def logout():
    session.pop(SESSION_KEY, None)
    session.pop(SEEN_KEY, None)
    flash("You are signed out.", "info")
    return redirect(url_for("portal.login"))


@bp.get("/")
@debtor_required
def home():
    cases = db.session.scalars(
        sa.select(Case)
        .where(Case.debtor_id == g.debtor.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.reference)
    ).all()
    return render_template(
        "portal/home.html",
        debtor=g.debtor,
        cases=cases,
        balances=balances(db.session, [c.id for c in cases]),
    )
