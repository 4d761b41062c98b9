"""Payment plans in the portal: the debtor chooses one inside the client's bounds, saves a card
for autopay with a SetupIntent (`confirmCardSetup`; the card never reaches this server),
and confirms on-session an installment their bank wants authenticated (`confirmCardPayment`).
The dates a dispute hold moved a plan to are confirmed in portal/plan_dates.py."""

from __future__ import annotations

import uuid

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
)
from wtforms.validators import DataRequired, InputRequired, Optional

from cases.case import Case
from cases.offers import SettlementOffer
from cases.plans import (
    FREQUENCIES,
    Installment,
    PaymentPlan,
    PlanError,
    ScheduledPayment,
    active_plan,
    create_plan,
    max_installments,
    plan_schedule,
    plan_total,
    record_consent,
    save_card,
)
from correspondence.pdf import agency_letterhead
from correspondence.plan_agreement import store_agreement
from payments.autopay import settle_authenticated
from payments.gateway import GatewayError
from portal.access import (
    bp,
    debtor_actor,
    debtor_required,
    own_case,
    own_case_document,
)
from portal.pay import gateway
from portal.wording import long_date
from shell.extensions import db
from shell.money import MoneyField, format_cents
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import attempt

SETUP_KEY = "plan_setup_intents"


def frequency_words() -> dict[str, str]:
    return {"weekly": _("Weekly"), "biweekly": _("Every two weeks"), "monthly": _("Monthly")}


def authorisation_text() -> str:
    agency = agency_letterhead()
    return _(
        "I authorise %(agency)s to charge the card I save here for each installment of this "
        "payment plan, on or after its due date, in the amounts shown in the schedule, until "
        "the plan is paid, cancelled or broken. A declined installment may be tried again "
        "after 3 days. I can cancel this authorisation by calling %(phone)s.",
        agency=agency["name"],
        phone=agency["phone"],
    )


class PortalPlanForm(FlaskForm):
    frequency = SelectField(_l("How often"), choices=[])
    count = IntegerField(_l("Number of payments"), validators=[InputRequired()])
    down_payment = MoneyField(
        _l("Down payment in US dollars (optional)"),
        validators=[Optional()],
        description=_l("At least $25.00 if you make one."),
    )
    first_on = DateField(
        _l("First payment on"),
        validators=[DataRequired()],
        description=_l("Within 30 days from today."),
    )
    autopay = BooleanField(_l("Pay automatically with a card I save (autopay)"))


def _own_plan(plan_id: int, statuses: tuple[str, ...] = ("active",)) -> tuple[PaymentPlan, Case]:
    plan = db.session.get(PaymentPlan, plan_id)
    if plan is None or plan.status not in statuses:
        abort(404)
    case = own_case(db.session.get(Case, plan.case_id).reference)
    return plan, case


def shown_schedule(schedule: list[ScheduledPayment]) -> str:
    """The schedule as the review page showed it: only a plan the debtor saw is set up."""
    return ",".join(f"{p.due_on.isoformat()}:{p.amount_cents}" for p in schedule)


@bp.route("/cases/<reference>/plan", methods=["GET", "POST"])
@debtor_required
def choose_plan(reference: str):
    """Choose the terms, then review the whole schedule; the plan is set up (written) only when
    the debtor confirms the schedule shown (`action=confirm`)."""
    case = own_case(reference)
    if not case.takes_plan or active_plan(db.session, case.id) is not None:
        flash(_("A payment plan cannot be set up on this account online. Please call us."), "info")
        return redirect(url_for("portal.case", reference=case.reference))
    total, offer = plan_total(db.session, case)
    words = frequency_words()
    form = PortalPlanForm()
    form.frequency.choices = [SelectChoice(f, words[f]) for f in FREQUENCIES]
    months = case.client.max_plan_months
    limits = {f: max_installments(f, months) for f in FREQUENCIES}
    if offer is not None:  # a settlement in installments allows no more than it says
        limits = {f: min(n, offer.max_installments) for f, n in limits.items()}
    context = {
        "debtor": g.debtor,
        "case": case,
        "form": form,
        "total": total,
        "offer": offer,
        "limits": limits,
        "words": words,
        "authorisation": authorisation_text(),
    }
    action = request.form.get("action")
    if not form.validate_on_submit() or action == "change":
        status = 400 if request.method == "POST" and action != "change" else 200
        return render_template("portal/plan.html", **context), status
    try:
        schedule, total, _offer = plan_schedule(
            db.session,
            case,
            frequency=form.frequency.data,
            count=form.count.data,
            first_on=form.first_on.data,
            today=agency_today(),
            down_payment_cents=form.down_payment.data or 0,
        )
    except PlanError as exc:
        form.count.errors = [_plan_error(str(exc), offer)]
        return render_template("portal/plan.html", **context), 400
    review = {**context, "schedule": schedule, "total": total, "shown": shown_schedule(schedule)}
    if action != "confirm":
        return render_template("portal/plan_review.html", **review)
    if request.form.get("shown") != review["shown"]:
        flash(_("The schedule has changed. Please look at it again before you confirm."), "error")
        return render_template("portal/plan_review.html", **review), 409
    try:
        with attempt():
            plan = create_plan(
                db.session,
                case,
                frequency=form.frequency.data,
                count=form.count.data,
                first_on=form.first_on.data,
                today=agency_today(),
                actor=debtor_actor(),
                down_payment_cents=form.down_payment.data or 0,
                autopay=form.autopay.data,
            )
    except PlanError as exc:
        form.count.errors = [_plan_error(str(exc), offer)]
        return render_template("portal/plan.html", **context), 400
    if not plan.autopay:
        record_consent(
            db.session,
            plan,
            text=_("I agree to pay the schedule shown in this payment plan."),
            actor=debtor_actor(),
        )
        store_agreement(case, plan, uploaded_by_id=None)
    if plan.autopay:
        return redirect(url_for("portal.autopay", plan_id=plan.id))
    flash(_("Your payment plan is set up. Pay each installment here by its due date."), "success")
    return redirect(url_for("portal.case", reference=case.reference))


def _plan_error(message: str, offer: SettlementOffer | None) -> str:
    """The domain's reason, in the debtor's words where we have them."""
    if offer is not None and "settlement allows at most" in message:
        return _(
            "Your settlement allows at most %(count)s payments, a down payment included. "
            "Choose fewer payments.",
            count=offer.max_installments,
        )
    if offer is not None and "settlement must be paid by" in message:
        return _(
            "Your settlement must be paid in full by %(date)s. Choose fewer payments, "
            "more frequent payments or an earlier first payment.",
            date=long_date(offer.expires_on),
        )
    if "fit in this client" in message:
        return _("That is more payments than this account allows. Choose fewer payments.")
    if "at least $25" in message and "down payment" not in message:
        return _("Each payment must be at least $25.00. Choose fewer payments.")
    if "within 30 days" in message:
        return _("The first payment must be within 30 days.")
    if "in the past" in message:
        return _("The first payment cannot be in the past.")
    if "down payment" in message:
        return _("The down payment must be at least $25.00 and less than the total.")
    return _("This plan is not possible. Please change it or call us.")


@bp.get("/plans/<int:plan_id>/autopay")
@debtor_required
def autopay(plan_id: int):
    """The card form: a SetupIntent on the debtor's Stripe customer, confirmed in the browser."""
    plan, case = _own_plan(plan_id)
    try:
        customer = gateway().ensure_customer(
            debtor_id=g.debtor.id,
            name=g.debtor.display_name,
            email=next((e.address for e in g.debtor.emails), None),
        )
        setup = gateway().create_setup_intent(
            customer_id=customer, idempotency_key=f"plan-{plan.id}-setup-{uuid.uuid4().hex}"
        )
    except GatewayError as exc:
        flash(str(exc), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    # Only a SetupIntent this page made may save a card on this plan.
    session[SETUP_KEY] = {**session.get(SETUP_KEY, {}), str(plan.id): [setup.id, customer]}
    return render_template(
        "portal/autopay.html",
        debtor=g.debtor,
        case=case,
        plan=plan,
        words=frequency_words(),
        setup=setup,
        authorisation=authorisation_text(),
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
        stripe_js=current_app.config["STRIPE_JS_URL"],
    )


@bp.get("/plans/<int:plan_id>/autopay/done")
@debtor_required
def autopay_done(plan_id: int):
    """Where the browser lands after `confirmCardSetup`: Stripe says whether a card was saved."""
    plan, case = _own_plan(plan_id)
    expected = session.get(SETUP_KEY, {}).get(str(plan.id))
    if not expected or request.args.get("setup_intent") != expected[0]:
        abort(404)
    try:
        setup = gateway().retrieve_setup_intent(expected[0])
    except GatewayError as exc:
        flash(str(exc), "error")
        return redirect(url_for("portal.autopay", plan_id=plan.id))
    if setup.status != "succeeded" or not setup.payment_method_id:
        flash(_("Your card was not saved. Nothing was charged. Try again or call us."), "error")
        return redirect(url_for("portal.autopay", plan_id=plan.id))
    save_card(
        db.session,
        plan,
        customer_id=expected[1],
        payment_method_id=setup.payment_method_id,
        actor=debtor_actor(),
    )
    record_consent(db.session, plan, text=authorisation_text(), actor=debtor_actor())
    store_agreement(case, plan, uploaded_by_id=None)
    session[SETUP_KEY] = {k: v for k, v in session[SETUP_KEY].items() if k != str(plan.id)}
    flash(_("Your card is saved. Each installment will be charged on its due date."), "success")
    return redirect(url_for("portal.case", reference=case.reference))


def _own_installment(installment_id: int) -> tuple[Installment, Case]:
    installment = db.session.get(Installment, installment_id)
    if installment is None:
        abort(404)
    case = own_case(db.session.get(Case, installment.plan.case_id).reference)
    return installment, case


@bp.get("/installments/<int:installment_id>/authenticate")
@debtor_required
def authenticate_installment(installment_id: int):
    """The link in the email: confirm on-session a charge the bank wants authenticated."""
    installment, case = _own_installment(installment_id)
    if not installment.needs_authentication or not installment.payment_intent_id:
        flash(_("There is nothing to confirm for this installment."), "info")
        return redirect(url_for("portal.case", reference=case.reference))
    try:
        intent = gateway().retrieve_payment_intent(installment.payment_intent_id)
    except GatewayError as exc:
        flash(str(exc), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    if intent.succeeded:
        return redirect(url_for("portal.installment_authenticated", installment_id=installment.id))
    return render_template(
        "portal/authenticate.html",
        debtor=g.debtor,
        case=case,
        installment=installment,
        intent=intent,
        amount=format_cents(installment.amount_cents),
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
        stripe_js=current_app.config["STRIPE_JS_URL"],
    )


@bp.get("/installments/<int:installment_id>/authenticated")
@debtor_required
def installment_authenticated(installment_id: int):
    installment, case = _own_installment(installment_id)
    if installment.payment_intent_id is None:
        abort(404)
    try:
        intent = gateway().retrieve_payment_intent(installment.payment_intent_id)
    except GatewayError as exc:
        flash(str(exc), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    if settle_authenticated(db.session, installment, intent, zone=agency_zone()):
        flash(_("Thank you. Your installment was paid."), "success")
    else:
        flash(
            _("The installment was not paid. Nothing was charged. Try again or call us."), "error"
        )
    return redirect(url_for("portal.case", reference=case.reference))


@bp.get("/cases/<reference>/plan-agreement/<int:document_id>")
@debtor_required
def plan_agreement(reference: str, document_id: int):
    return own_case_document(reference, document_id, "plan_agreement")
