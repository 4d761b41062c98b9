"""The dates the end of a dispute hold moved a debtor's plan to: shown in the portal, and
confirmed with a button (until then autopay charges none of them)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField

from cases.case import Case
from cases.plans import IN_FORCE, UNPAID, PaymentPlan, PlanError, active_plan, confirm_new_dates
from correspondence.plan_agreement import store_agreement
from portal.access import bp, debtor_actor, debtor_required
from portal.plan_pages import _own_plan, authorisation_text
from portal.wording import long_date
from shell.extensions import db
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def plan_in_force(case: Case) -> PaymentPlan | None:
    """For the case page: the case's plan in force, a paused one too."""
    return active_plan(db.session, case.id)


bp.add_app_template_global(plan_in_force, "plan_in_force")


class ConfirmDatesForm(FlaskForm):
    """Nothing to fill in: the button, its CSRF token, and the dates shown (so that only dates
    the debtor saw are confirmed)."""

    dates = HiddenField()


def shown_dates(plan: PaymentPlan) -> str:
    return ",".join(i.due_on.isoformat() for i in plan.installments if i.status in UNPAID)


def new_dates_text(plan: PaymentPlan) -> str:
    """The wording the debtor agrees to: the moved dates, and with autopay, the card's use."""
    dates = "; ".join(
        f"{long_date(i.due_on)} ${i.amount_cents / 100:,.2f}"
        for i in plan.installments
        if i.status in UNPAID
    )
    text = _(
        "I agree to pay the rest of my payment plan on these new dates: %(dates)s.", dates=dates
    )
    if plan.autopay and plan.stripe_payment_method_id:
        text = f"{text} {authorisation_text()}"
    return text


@bp.route("/plans/<int:plan_id>/new-dates", methods=["GET", "POST"])
@debtor_required
def confirm_plan_dates(plan_id: int):
    """The dates the end of a dispute hold moved the plan to: shown, and confirmed with a button
    (until then autopay charges none of them)."""
    plan, case = _own_plan(plan_id, IN_FORCE)
    if not plan.awaiting_confirmation:
        flash(_("There are no new dates to confirm on this plan."), "info")
        return redirect(url_for("portal.case", reference=case.reference))
    form = ConfirmDatesForm()
    text = new_dates_text(plan)
    valid = form.validate_on_submit()
    if valid and form.dates.data != shown_dates(plan):
        flash(_("The dates of your plan have changed. Please look at them again."), "error")
        valid = False
    if not valid:
        form.dates.data = shown_dates(plan)
        return render_template(
            "portal/plan_dates.html",
            debtor=g.debtor,
            case=case,
            plan=plan,
            form=form,
            text=text,
            unpaid=UNPAID,
        ), (400 if request.method == "POST" else 200)
    try:
        with attempt():
            confirm_new_dates(
                db.session, plan, text=text, today=agency_today(), actor=debtor_actor()
            )
    except PlanError as exc:
        if "has passed" in str(exc):
            flash(_("The time to confirm these dates has passed. Please call us."), "error")
        else:
            flash(_("These dates cannot be confirmed online. Please call us."), "error")
        return redirect(url_for("portal.case", reference=case.reference))
    store_agreement(case, plan, uploaded_by_id=None)
    flash(_("Thank you. Your payment plan continues on the new dates."), "success")
    return redirect(url_for("portal.case", reference=case.reference))
