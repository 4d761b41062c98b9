"""The case screen's arrangements to pay: promises to pay and payment plans."""

from __future__ import annotations

from flask_login import current_user

from agency.casework import act, staff_case
from agency.staff import actor, bp
from cases.plans import create_plan, record_promise
from correspondence.plan_agreement import store_agreement
from shell.extensions import db
from shell.timezone import agency_today


@bp.post("/cases/<reference>/promises")
def promise(reference: str):
    case = staff_case(reference)

    def do(form):
        record_promise(
            db.session,
            case,
            amount_cents=form.amount.data,
            due_on=form.due_on.data,
            today=agency_today(),
            actor=actor(),
        )
        return "Promise to pay recorded."

    return act(case, "promise_form", do)


@bp.post("/cases/<reference>/plans")
def plan(reference: str):
    case = staff_case(reference)

    def do(form):
        plan = create_plan(
            db.session,
            case,
            frequency=form.frequency.data,
            count=form.count.data,
            first_on=form.first_on.data,
            today=agency_today(),
            actor=actor(),
            down_payment_cents=form.down_payment.data or 0,
            autopay=form.autopay.data,
        )
        store_agreement(case, plan, uploaded_by_id=current_user.id)
        return f"Payment plan set up: {len(plan.installments)} payments."

    return act(case, "plan_form", do)
