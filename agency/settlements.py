"""Settlement offers at the agency: proposing one from the case screen, and the supervisors'
approval list (/agency/offers)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange, Optional

from agency.casework import act, staff_case
from agency.staff import actor, bp
from cases.case import Case
from cases.clients import Client
from cases.ledger import balances
from cases.offers import (
    OfferBand,
    OfferError,
    SettlementOffer,
    add_band,
    approve_offer,
    awaiting_approval,
    bands_of,
    propose_offer,
    remove_band,
    withdraw_offer,
)
from cases.users import User
from shell.extensions import db
from shell.money import MoneyField, PercentField, parse_cents
from shell.security import roles_required
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def _percent_bps(text: str) -> int:
    try:
        return parse_cents(text.strip().rstrip("%"))  # "82.5" → 8250 basis points
    except ValueError:
        raise OfferError("enter the percentage as a number, like 80 or 82.5") from None


@bp.post("/cases/<reference>/offers")
def propose(reference: str):
    case = staff_case(reference)

    def do(form):
        percent = (form.percent.data or "").strip()
        if form.amount.data is not None and percent:
            raise OfferError("give either an amount or a percentage of the balance, not both")
        if form.amount.data is None and not percent:
            raise OfferError("give an amount or a percentage of the balance")
        offer = propose_offer(
            db.session,
            case,
            amount_cents=form.amount.data,
            percent_bps=_percent_bps(percent) if percent else None,
            expires_on=form.expires_on.data,
            max_installments=int(form.installments.data),
            today=agency_today(),
            role=current_user.role,
            actor=actor(),
        )
        amount = f"${offer.amount_cents / 100:,.2f}"
        if offer.status == "approved":
            return f"Offer of {amount} made; the debtor sees it in the portal."
        return f"Offer of {amount} waits for a supervisor's approval (under 85% of the balance)."

    return act(case, "offer_form", do)


@bp.get("/offers")
@roles_required("admin", "supervisor")
def offers():
    waiting = awaiting_approval(db.session, agency_today())
    cases = {
        c.id: c
        for c in db.session.scalars(
            sa.select(Case).where(Case.id.in_([o.case_id for o in waiting]))
        )
    }
    proposers = {
        u.id: u
        for u in db.session.scalars(
            sa.select(User).where(User.id.in_([o.proposed_by_id for o in waiting]))
        )
    }
    return render_template(
        "agency/offers.html",
        offers=waiting,
        cases=cases,
        proposers=proposers,
        balances=balances(db.session, list(cases)),
        form=FlaskForm(),
    )


def _decide(offer_id: int, decide) -> object:
    offer = db.session.get(SettlementOffer, offer_id) or abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            message = decide(offer)
    except OfferError as exc:
        flash(str(exc), "error")
    else:
        flash(message, "success")
    if request.form.get("back") == "case":  # decided from the case screen
        case = db.session.get(Case, offer.case_id)
        return redirect(url_for("staff.case", reference=case.reference, tab="offer"))
    return redirect(url_for("staff.offers"))


@bp.post("/offers/<int:offer_id>/approve")
@roles_required("admin", "supervisor")
def approve(offer_id: int):
    def decide(offer):
        approve_offer(
            db.session, offer, role=current_user.role, actor=actor(), today=agency_today()
        )
        return "Offer approved; the debtor sees it in the portal."

    return _decide(offer_id, decide)


@bp.post("/offers/<int:offer_id>/withdraw")
@roles_required("admin", "supervisor")
def withdraw(offer_id: int):
    def decide(offer):
        withdraw_offer(
            db.session,
            offer,
            role=current_user.role,
            actor=actor(),
            reason=request.form.get("reason", "") or "withdrawn by a supervisor",
        )
        return "Offer withdrawn."

    return _decide(offer_id, decide)


# --- a client's self-service offer bands (admin) -----------------------------------------


class BandForm(FlaskForm):
    min_balance = MoneyField("Balances from", validators=[InputRequired()])
    max_balance = MoneyField("up to (not included; empty: no upper end)", validators=[Optional()])
    pay_percent = PercentField(
        "The debtor pays (% of the balance)",
        validators=[
            InputRequired("Enter what the debtor pays, like 80%."),
            NumberRange(1, 10000, "The debtor pays from 0.01%% to 100%% of the balance."),
        ],
        description="e.g. 80% or 82.5%",
    )
    valid_days = IntegerField(
        "Days to pay after accepting",
        default=30,
        validators=[
            InputRequired("Enter the days to pay."),
            NumberRange(1, 60, "Days to pay are from 1 to 60."),
        ],
    )


def _client(code: str) -> Client:
    return db.session.scalar(sa.select(Client).where(Client.code == code)) or abort(404)


@bp.route("/clients/<code>/bands", methods=["GET", "POST"])
@roles_required("admin")
def bands(code: str):
    client = _client(code)
    form = BandForm()
    status = 200
    if form.validate_on_submit():
        try:
            with attempt():
                add_band(
                    db.session,
                    client,
                    min_balance_cents=form.min_balance.data,
                    max_balance_cents=form.max_balance.data,
                    pay_bps=form.pay_percent.data,
                    valid_days=form.valid_days.data,
                    actor=actor(),
                )
        except OfferError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            flash("Band added; debtors in it see the discount in the portal.", "success")
            return redirect(url_for("staff.bands", code=client.code))
    elif request.method == "POST":
        status = 422
        for name, errors in form.errors.items():
            flash(f"{getattr(form, name).label.text}: {'; '.join(errors)}", "error")
    return render_template(
        "agency/bands.html",
        client=client,
        bands=bands_of(db.session, client.id),
        form=form,
        plain_form=FlaskForm(),
    ), status


@bp.post("/clients/<code>/bands/<int:band_id>/remove")
@roles_required("admin")
def remove_offer_band(code: str, band_id: int):
    client = _client(code)
    band = db.session.get(OfferBand, band_id)
    if band is None or band.client_id != client.id:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    remove_band(db.session, band, actor=actor())
    flash("Band removed.", "success")
    return redirect(url_for("staff.bands", code=client.code))
