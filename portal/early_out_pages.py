"""The early-out account's page (/portal/early-out/<token>): branded as the client, with no
collection language. The debtor pays through the same Stripe flow as the portal, or tells the
client "I already paid" / "there is a problem". The signed token in the reminder's link is the
way in (no sign-in: the page shows only what the reminder already said)."""

from __future__ import annotations

import uuid

from flask import abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField

from cases import audit
from cases.case import Case, case_by_reference
from cases.early_out import EarlyOutError, record_reply, terms_of
from cases.early_out_plans import (
    create_early_out_plan,
    early_out_schedule,
    next_installment,
    plan_counts,
    settle_installments,
)
from cases.ledger import balance_cents
from cases.plans import PlanError, ScheduledPayment, active_plan
from correspondence import i18n
from correspondence.early_out_messages import reference_of_token
from correspondence.validation_notice import written_date
from payments.card import CardAmountError, check_card_amount
from payments.gateway import GatewayError, statement_suffix
from payments.webhooks import apply_succeeded_intent
from portal.access import bp
from portal.pay import gateway
from shell.extensions import db
from shell.money import format_cents, parse_cents
from shell.timezone import agency_today
from shell.unit_of_work import attempt

DEBTOR = audit.Actor(None, "debtor")
# The page's words in the debtor's language; no collection language in either.
WORDS = {
    "en": {
        "title": "Your account with %(client)s",
        "owed": "Amount due: %(amount)s (account %(account)s, due %(due)s).",
        "amount": "Amount to pay (US dollars)",
        "pay": "Continue to card details",
        "card": "Pay %(amount)s by card",
        "card_note": "Your card details go straight to our card processor, Stripe.",
        "pay_now": "Pay %(amount)s",
        "paid_title": "Thank you",
        "paid": "Your payment of %(amount)s to %(client)s was received.",
        "nothing": "There is nothing to pay on this account. Thank you.",
        "tell": "Already paid, or something wrong?",
        "already_paid": "I already paid",
        "problem": "There is a problem",
        "message": "Your message to %(client)s",
        "send": "Send to %(client)s",
        "sent": "Thank you. %(client)s has your message and will reply.",
        "working": "Processing your payment…",
        "failed": "The payment did not go through. Nothing was charged.",
        "incomplete": "Enter your card details.",
        "bad_amount": "Enter an amount like 125.50, from $5.00 up to what is due.",
        "pending": "Your payment is being processed. Please do not pay again.",
        "plan_offer": "Prefer to pay in parts? Pay in up to %(count)s payments, %(frequency)s.",
        "plan_start": "Pay in parts",
        "plan_title": "Pay %(client)s in parts",
        "plan_count": "Number of payments",
        "plan_intro": "%(amount)s in %(frequency)s payments; the first is due today.",
        "plan_review": "Show the payments",
        "plan_check": "Check your payments",
        "plan_summary": "%(count)s payments, %(frequency)s, %(amount)s in all. Nothing is set up until you confirm.",
        "plan_agree": "I agree to pay %(client)s the payments shown, each by its date, on this page.",
        "plan_confirm": "Confirm the payments",
        "plan_change": "Change",
        "plan_set": "Your payments are set up. Pay the first one now, and each next one by its date.",
        "plan_yours": "Your payments",
        "plan_none": "Paying in parts is not available for this account.",
        "plan_bad": "Those payments are not possible (each must be at least $25.00). Choose fewer payments.",
        "plan_changed": "The amount due has changed. Please check the payments again.",
        "plan_next": "Next payment: %(amount)s, due %(date)s.",
        "col_payment": "Payment",
        "col_due": "Due",
        "col_amount": "Amount",
        "col_status": "Status",
        "total": "Total",
        "st_paid": "Paid",
        "st_due": "To pay",
        "back": "Back to your account",
        "monthly": "monthly",
        "biweekly": "every two weeks",
    },
    "es": {
        "title": "Su cuenta con %(client)s",
        "owed": "Monto a pagar: %(amount)s (cuenta %(account)s, vencía el %(due)s).",
        "amount": "Monto a pagar (dólares)",
        "pay": "Continuar a los datos de la tarjeta",
        "card": "Pagar %(amount)s con tarjeta",
        "card_note": "Los datos de su tarjeta van directamente a nuestro procesador, Stripe.",
        "pay_now": "Pagar %(amount)s",
        "paid_title": "Gracias",
        "paid": "Recibimos su pago de %(amount)s a %(client)s.",
        "nothing": "No hay nada que pagar en esta cuenta. Gracias.",
        "tell": "¿Ya pagó, o hay algún problema?",
        "already_paid": "Ya pagué",
        "problem": "Hay un problema",
        "message": "Su mensaje a %(client)s",
        "send": "Enviar a %(client)s",
        "sent": "Gracias. %(client)s recibió su mensaje y le responderá.",
        "working": "Procesando su pago…",
        "failed": "El pago no se realizó. No se cobró nada.",
        "incomplete": "Ingrese los datos de su tarjeta.",
        "bad_amount": "Ingrese un monto como 125.50, de $5.00 hasta lo que debe.",
        "pending": "Su pago se está procesando. Por favor no pague de nuevo.",
        "plan_offer": "¿Prefiere pagar en partes? Pague en hasta %(count)s pagos, %(frequency)s.",
        "plan_start": "Pagar en partes",
        "plan_title": "Pagar a %(client)s en partes",
        "plan_count": "Número de pagos",
        "plan_intro": "%(amount)s en pagos %(frequency)s; el primero vence hoy.",
        "plan_review": "Ver los pagos",
        "plan_check": "Revise sus pagos",
        "plan_summary": "%(count)s pagos, %(frequency)s, %(amount)s en total. No se establece nada hasta que confirme.",
        "plan_agree": "Acepto pagar a %(client)s los pagos indicados, cada uno en su fecha, en esta página.",
        "plan_confirm": "Confirmar los pagos",
        "plan_change": "Cambiar",
        "plan_set": "Sus pagos quedaron establecidos. Pague el primero ahora y cada uno de los siguientes en su fecha.",
        "plan_yours": "Sus pagos",
        "plan_none": "Pagar en partes no está disponible para esta cuenta.",
        "plan_bad": "Esos pagos no son posibles (cada uno debe ser de al menos $25.00). Elija menos pagos.",
        "plan_changed": "El monto a pagar cambió. Por favor revise los pagos de nuevo.",
        "plan_next": "Próximo pago: %(amount)s, vence el %(date)s.",
        "col_payment": "Pago",
        "col_due": "Vence",
        "col_amount": "Monto",
        "col_status": "Estado",
        "total": "Total",
        "st_paid": "Pagado",
        "st_due": "Por pagar",
        "back": "Volver a su cuenta",
        "monthly": "mensuales",
        "biweekly": "cada dos semanas",
    },
}


class EarlyOutPayForm(FlaskForm):
    amount = StringField()


class EarlyOutPlanForm(FlaskForm):
    count = IntegerField()


class EarlyOutReplyForm(FlaskForm):
    kind = StringField()  # from the button pressed (not a hidden field: it would be sent too)
    message = TextAreaField()


def _account(token: str) -> Case:
    """The early-out account the link names, or 404 (a converted account is no longer here)."""
    reference = reference_of_token(token)
    case = case_by_reference(db.session, reference) if reference else None
    if case is None or case.program != "early_out":
        abort(404)
    return case


def _page(template: str, case: Case, token: str, status: int = 200, **context):
    lang = i18n.known(case.debtor.language)
    terms = terms_of(db.session, case.client_id)
    plan = active_plan(db.session, case.id) if case.program == "early_out" else None
    return render_template(
        f"early_out/{template}",
        case=case,
        token=token,
        lang=lang,
        w=WORDS[lang],
        client=case.client.name,
        logo=terms.logo_path,
        reply_to=terms.reply_to,
        plan=plan,
        next_due=next_installment(plan),
        plan_counts=plan_counts(terms) if plan is None else [],
        frequency=WORDS[lang][terms.plan_frequency],
        long_date=lambda day: written_date(day, lang),
        **context,
    ), status


def _pay_form(case: Case, balance: int) -> EarlyOutPayForm:
    """The amount to pay: the next plan payment when on a plan, else what is due."""
    due = next_installment(active_plan(db.session, case.id))
    amount = min(balance, due.amount_cents) if due is not None else balance
    return EarlyOutPayForm(amount=format_cents(amount))


@bp.route("/early-out/<token>", methods=["GET", "POST"])
def early_out(token: str):
    case = _account(token)
    balance = balance_cents(db.session, case.id)
    form = _pay_form(case, balance)
    reply = EarlyOutReplyForm()
    context = {"balance": balance, "form": form, "reply": reply, "error": None}
    if request.method == "GET" or not case.takes_payments or balance <= 0:
        return _page("account.html", case, token, **context)
    if not form.validate_on_submit():
        return _page("account.html", case, token, 400, **context)
    try:
        cents = check_card_amount(parse_cents(form.amount.data or ""), balance)
    except (ValueError, CardAmountError):
        context["error"] = WORDS[i18n.known(case.debtor.language)]["bad_amount"]
        return _page("account.html", case, token, 400, **context)
    try:
        intent = gateway().create_payment_intent(
            amount_cents=cents,
            case_reference=case.reference,
            idempotency_key=f"early-out-{case.id}-{uuid.uuid4().hex}",
            description=f"Payment to {case.client.name}",
            metadata={"source": "early_out"},
            # The card statement names the client (only here: collection payments never do).
            statement_suffix=statement_suffix(
                case.client.name, current_app.config["STRIPE_DESCRIPTOR_PREFIX"]
            ),
        )
    except GatewayError as exc:
        context["error"] = str(exc)
        return _page("account.html", case, token, 502, **context)
    return _page(
        "pay_card.html",
        case,
        token,
        intent=intent,
        amount=cents,
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
        stripe_js=current_app.config["STRIPE_JS_URL"],
        fake_stripe=bool(current_app.config["STRIPE_API_BASE"]),
    )


def _own_intent(token: str, intent_id: str):
    case = _account_any(token)
    if not intent_id.startswith("pi_") or len(intent_id) > 80:
        abort(404)
    try:
        intent = gateway().retrieve_payment_intent(intent_id)
    except GatewayError as exc:
        if exc.retryable:
            raise
        abort(404)
    if intent.metadata.get("case_reference") != case.reference:
        abort(404)
    return case, intent


def _account_any(token: str) -> Case:
    """The account the link names, early-out or since converted (a payment made just before
    the conversion still lands)."""
    reference = reference_of_token(token)
    case = case_by_reference(db.session, reference) if reference else None
    if case is None or case.early_out_placed_on is None:
        abort(404)
    return case


@bp.get("/early-out/<token>/payments/<intent_id>")
def early_out_payment(token: str, intent_id: str):
    """Where the browser lands after Stripe.js: posted once, like the portal's payments."""
    case, intent = _own_intent(token, intent_id)
    if intent.succeeded:
        apply_succeeded_intent(db.session, intent, agency_today(), case)
        plan = active_plan(db.session, case.id) if case.program == "early_out" else None
        if plan is not None:  # the plan's payments it covers show as paid at once
            settle_installments(db.session, plan, actor=DEBTOR)
        amount = intent.amount_received_cents or intent.amount_cents
        return _page("paid.html", case, token, amount=amount)
    return _page("paid.html", case, token, 409, amount=None)


@bp.post("/early-out/<token>/payments/<intent_id>/fake-confirm")
def early_out_fake_confirm(token: str, intent_id: str):
    """Only with a fake Stripe (STRIPE_API_BASE): as portal.pay.fake_confirm."""
    if not current_app.config["STRIPE_API_BASE"]:
        abort(404)
    try:
        _own_intent(token, intent_id)
        card_id = str((request.get_json(silent=True) or {}).get("card", ""))
        if not card_id.startswith("card_") or len(card_id) > 80:
            return jsonify(error={"message": "Enter your card details."}), 400
        intent = gateway().confirm_with_browser_card(intent_id, card_id)
    except GatewayError as exc:
        return jsonify(error={"message": str(exc)}), 402
    if intent.status == "requires_payment_method":
        return jsonify(error={"message": "The payment did not go through."}), 402
    return jsonify(id=intent.id, status=intent.status)


@bp.post("/early-out/<token>/reply")
def early_out_reply(token: str):
    case = _account(token)
    reply = EarlyOutReplyForm()
    balance = balance_cents(db.session, case.id)
    context = {
        "balance": balance,
        "form": _pay_form(case, balance),
        "reply": reply,
        "error": None,
    }
    if not reply.validate_on_submit():
        return _page("account.html", case, token, 400, **context)
    try:
        with attempt():
            record_reply(db.session, case, reply.kind.data, reply.message.data, actor=DEBTOR)
    except EarlyOutError as exc:
        context["reply_error"] = str(exc)
        return _page("account.html", case, token, 422, **context)
    return redirect(url_for("portal.early_out", token=token, sent=1))


def _shown(schedule: list[ScheduledPayment]) -> str:
    """The schedule as the review page showed it: only what the debtor saw is set up."""
    return ",".join(f"{p.due_on.isoformat()}:{p.amount_cents}" for p in schedule)


@bp.route("/early-out/<token>/plan", methods=["GET", "POST"])
def early_out_plan(token: str):
    """Pay in parts, within the client's terms: choose how many payments, see every date and
    amount, confirm (`action=confirm`); nothing is written before the confirmation."""
    case = _account(token)
    w = WORDS[i18n.known(case.debtor.language)]
    terms = terms_of(db.session, case.client_id)
    balance = balance_cents(db.session, case.id)
    form = EarlyOutPlanForm()
    counts = plan_counts(terms)
    if (
        not counts
        or not case.takes_payments
        or balance <= 0
        or active_plan(db.session, case.id) is not None
    ):
        return _page("plan.html", case, token, 200 if request.method == "GET" else 409, closed=True)
    context = {"form": form, "balance": balance, "closed": False, "error": None}
    action = request.form.get("action")
    if request.method == "GET" or action == "change":
        return _page("plan.html", case, token, **context)
    if not form.validate_on_submit() or form.count.data not in counts:
        context["error"] = w["plan_bad"]
        return _page("plan.html", case, token, 400, **context)
    try:
        schedule = early_out_schedule(db.session, case, count=form.count.data, today=agency_today())
    except PlanError:
        context["error"] = w["plan_bad"]
        return _page("plan.html", case, token, 400, **context)
    review = {**context, "schedule": schedule, "shown": _shown(schedule)}
    if action != "confirm":
        return _page("plan_review.html", case, token, **review)
    if request.form.get("shown") != review["shown"]:
        review["error"] = w["plan_changed"]
        return _page("plan_review.html", case, token, 409, **review)
    try:
        with attempt():
            create_early_out_plan(
                db.session,
                case,
                count=form.count.data,
                today=agency_today(),
                consent_text=w["plan_agree"] % {"client": case.client.name},
                actor=DEBTOR,
            )
    except PlanError:
        context["error"] = w["plan_bad"]
        return _page("plan.html", case, token, 400, **context)
    return redirect(url_for("portal.early_out", token=token, plan=1))
