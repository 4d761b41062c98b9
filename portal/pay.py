"""Paying by card: the server makes a PaymentIntent, the browser confirms it with Stripe.js
(`confirmCardPayment` with the card Element), and the card never reaches this server.

A payment counts only once Stripe says it succeeded: the webhook, or our own read of the
PaymentIntent when the browser comes back; both apply it through the same once-only path."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired

from cases.case import Case, case_by_reference
from cases.ledger import balance_cents
from cases.plans import UNPAID, Installment, active_plan
from payments.card import CardAmountError, can_pay_by_card, check_card_amount, settlement_due
from payments.gateway import GatewayError, PaymentGateway, PaymentIntentInfo
from payments.webhooks import apply_succeeded_intent
from portal.access import bp, debtor_required, own_case
from shell.extensions import db
from shell.money import format_cents, parse_cents
from shell.timezone import agency_today

# Templates ask the same rule the pay page applies.
bp.add_app_template_global(can_pay_by_card, "can_pay")


class AmountForm(FlaskForm):
    amount = StringField(
        _l("Amount to pay (US dollars)"),
        validators=[DataRequired()],
        description=_l("At least $5.00, at most your balance."),
    )


def next_installment(case: Case) -> Installment | None:
    """The first installment not yet paid of the case's active plan, if it has one."""
    plan = active_plan(db.session, case.id)
    if plan is None or plan.status != "active":
        return None
    return next((i for i in plan.installments if i.status in UNPAID), None)


def gateway() -> PaymentGateway:
    found = current_app.extensions.get("recourse.gateway")
    if found is None:
        raise GatewayError(_("Card payments are not available right now. Please call us."))
    return found


def _amount(form: AmountForm, balance: int) -> int | None:
    try:
        cents = parse_cents(form.amount.data)
    except ValueError:
        form.amount.errors = [_("Enter an amount like 125.50.")]
        return None
    try:
        return check_card_amount(cents, balance)
    except CardAmountError as exc:
        if exc.kind == "too_small":
            form.amount.errors = [_("The smallest payment is $5.00.")]
        else:
            form.amount.errors = [
                _("You owe $%(balance)s; enter that or less.", balance=format_cents(balance))
            ]
    return None


@bp.route("/cases/<reference>/pay", methods=["GET", "POST"])
@debtor_required
def pay(reference: str):
    case = own_case(reference)
    balance = balance_cents(db.session, case.id)
    if not can_pay_by_card(case, balance):
        flash(_("There is nothing to pay on this account."), "info")
        return redirect(url_for("portal.case", reference=case.reference))
    # An accepted settlement: the page starts at what is left to pay on it.
    offer, due = settlement_due(db.session, case, balance, agency_today())
    # On a plan, the page starts at the plan's next installment.
    installment = next_installment(case)
    if installment is not None:
        due = min(due, installment.amount_cents)
    form = AmountForm(amount=format_cents(due))
    context = {
        "debtor": g.debtor,
        "case": case,
        "balance": balance,
        "form": form,
        "offer": offer,
        "offer_due": due,
        "installment": installment,
    }
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("portal/pay.html", **context), status
    cents = _amount(form, balance)
    if cents is None:
        return render_template("portal/pay.html", **context), 400
    try:
        intent = gateway().create_payment_intent(
            amount_cents=cents,
            case_reference=case.reference,
            idempotency_key=f"portal-{case.id}-{uuid.uuid4().hex}",
            description=f"Payment on {case.reference}",
            metadata={
                "debtor_id": str(g.debtor.id),
                "source": "portal",
                **({"offer_id": str(offer.id)} if offer else {}),
            },
        )
    except GatewayError as exc:
        form.amount.errors = [str(exc)]
        return render_template("portal/pay.html", **context), 502
    return render_template(
        "portal/pay_card.html",
        **context,
        intent=intent,
        amount=cents,
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
        stripe_js=current_app.config["STRIPE_JS_URL"],
        fake_stripe=bool(current_app.config["STRIPE_API_BASE"]),
    )


def _own_intent(intent_id: str) -> PaymentIntentInfo:
    """The PaymentIntent, if it is for one of the signed-in debtor's cases (else 404). Raises
    GatewayError when Stripe cannot be reached (it may well know the payment)."""
    if not intent_id.startswith("pi_") or len(intent_id) > 80:
        abort(404)
    try:
        intent = gateway().retrieve_payment_intent(intent_id)
    except GatewayError as exc:
        if exc.retryable:
            raise
        abort(404)  # unknown to Stripe
    own_case(intent.metadata.get("case_reference", ""))
    return intent


@bp.get("/payments/<intent_id>")
@debtor_required
def payment(intent_id: str):
    """Where the browser lands after Stripe.js: what Stripe says happened, and no more."""
    try:
        intent = _own_intent(intent_id)
    except GatewayError:
        flash(
            _(
                "We could not check your payment with Stripe just now. If it went through, "
                "it will show on your account in a few minutes; please do not pay again."
            ),
            "error",
        )
        return redirect(url_for("portal.home"))
    case = case_by_reference(db.session, intent.metadata["case_reference"])
    if intent.succeeded:
        entry = apply_succeeded_intent(db.session, intent, agency_today())
        if entry is not None:
            flash(_("Thank you. Your payment was received."), "success")
            return redirect(url_for("portal.receipt", entry_id=entry.id))
    return render_template(
        "portal/payment_status.html", debtor=g.debtor, case=case, intent=intent
    ), (200 if intent.status == "processing" else 409)


@bp.post("/payments/<intent_id>/fake-confirm")
@debtor_required
def fake_confirm(intent_id: str):
    """Only with a fake Stripe (STRIPE_API_BASE): stands in for Stripe's servers behind
    `confirmCardPayment` (see StripeGateway.confirm_with_browser_card). Takes the id of a card
    the browser tokenised at the fake Stripe; never card details."""
    if not current_app.config["STRIPE_API_BASE"]:
        abort(404)
    try:
        _own_intent(intent_id)
    except GatewayError as exc:
        return jsonify(error={"message": str(exc)}), 402
    card_id = str((request.get_json(silent=True) or {}).get("card", ""))
    if not card_id.startswith("card_") or len(card_id) > 80:
        return jsonify(error={"message": _("Enter your card details.")}), 400
    try:
        intent = gateway().confirm_with_browser_card(intent_id, card_id)
    except GatewayError as exc:
        return jsonify(error={"message": str(exc)}), 402
    if intent.status == "requires_payment_method":
        return jsonify(error={"message": declined_message(intent)}), 402
    return jsonify(id=intent.id, status=intent.status)


def declined_message(intent: PaymentIntentInfo) -> str:
    if intent.last_error_code in ("card_declined", "insufficient_funds", "expired_card"):
        return _("Your card was declined. Nothing was charged. Try another card or call us.")
    return _("The payment did not go through. Nothing was charged. Try again or call us.")
