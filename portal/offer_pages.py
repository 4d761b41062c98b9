"""Settlement offers in the portal: the debtor accepts one (the time and the words they agreed
to are kept, and a letter confirms the terms), then pays it from the pay page."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from cases import audit
from cases.offers import (
    OfferError,
    SettlementOffer,
    accept_offer,
    band_expiry,
    band_quote,
    take_band_offer,
)
from correspondence.settlement_letters import make_letter
from portal.access import (
    bp,
    debtor_actor,
    debtor_required,
    own_case,
    own_case_document,
)
from portal.wording import long_date
from shell.extensions import db
from shell.money import format_cents
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def acceptance_wording(amount_cents: int, expires_on: dt.date) -> str:
    """The words the debtor agrees to, in their language (shown next to the button)."""
    return _(
        "I accept this offer: I will pay $%(amount)s by %(date)s. When it is paid, the rest "
        "of the balance is written off and the account is settled. If it is not paid by then, "
        "the offer ends.",
        amount=format_cents(amount_cents),
        date=long_date(expires_on),
    )


@bp.post("/cases/<reference>/offers/<int:offer_id>/accept")
@debtor_required
def accept(reference: str, offer_id: int):
    case = own_case(reference)
    offer = db.session.get(SettlementOffer, offer_id)
    if offer is None or offer.case_id != case.id:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    wording = acceptance_wording(offer.amount_cents, offer.expires_on)
    actor = debtor_actor()
    try:
        with attempt():
            accept_offer(db.session, offer, actor=actor, today=agency_today(), wording=wording)
    except OfferError:
        flash(_("This offer can no longer be accepted."), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    return _accepted(case, offer, actor, wording)


def _accepted(case, offer: SettlementOffer, actor: audit.Actor, wording: str):
    make_letter(db.session, offer, "terms", actor=actor, wording=wording)
    flash(
        _(
            "You accepted the offer. Pay $%(amount)s by %(date)s to settle the account.",
            amount=format_cents(offer.amount_cents),
            date=long_date(offer.expires_on),
        ),
        "success",
    )
    return redirect(url_for("portal.case", reference=case.reference))


def discount_wording(case, today: dt.date) -> str | None:
    """The wording for the client's self-service discount on this case, if it has one."""
    quote = band_quote(db.session, case, today)
    if quote is None:
        return None
    band, amount, _balance = quote
    return acceptance_wording(amount, band_expiry(band, today, case))


@bp.post("/cases/<reference>/discount/accept")
@debtor_required
def accept_discount(reference: str):
    """Take the client's self-service discount: the offer is made and accepted at once."""
    case = own_case(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    today = agency_today()
    wording = discount_wording(case, today)
    actor = debtor_actor()
    try:
        if wording is None:
            raise OfferError("no discount")
        with attempt():
            offer = take_band_offer(db.session, case, today=today, actor=actor, wording=wording)
    except OfferError:
        flash(_("This offer can no longer be accepted."), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    return _accepted(case, offer, actor, wording)


@bp.get("/cases/<reference>/settlement-letters/<int:document_id>")
@debtor_required
def settlement_letter(reference: str, document_id: int):
    return own_case_document(reference, document_id, "settlement_letter")
