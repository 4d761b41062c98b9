"""Money that arrives outside Stripe: payments posted on a case and their reversals, payments
kept unmatched until they are assigned to a case, and the trust account."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from agency.casework import act, staff_case
from agency.staff import actor, bp
from cases import limitations
from cases.case import Case
from cases.ledger import LedgerEntry
from payments.posting import (
    new_external_id,
    post_instrument,
    reverse_payment,
    unmatched_external_id,
)
from payments.trust import trust_lines
from payments.unmatched import UnmatchedPayment, hold_unmatched, match
from shell.extensions import db
from shell.money import MoneyField, parse_cents
from shell.security import roles_required
from shell.timezone import agency_today
from shell.unit_of_work import attempt


@bp.post("/cases/<reference>/payments")
def post_case_payment(reference: str):
    case = staff_case(reference)

    def do(form):
        # A payment on a time-barred debt is taken; the collector is told what it does to the
        # limitation under the state's law (SPEC §6.11).
        barred = limitations.of_case(db.session, case)
        if barred is not None and not barred.time_barred(agency_today()):
            barred = None
        [entry] = post_instrument(
            db.session,
            [(case, form.amount.data)],
            method=form.method.data,
            number=form.reference.data,
            received_at=form.received_at.data,
            actor=actor(),
            today=agency_today(),
        )
        posted = f"Payment of ${-entry.amount_cents / 100:,.2f} posted"
        if not (form.reference.data or "").strip():
            posted += f" with receipt number {entry.external_id.rsplit(':', 1)[1]}"
        if barred is not None:
            posted += (
                f". The debt was time-barred since {barred.expires_on.isoformat()}: "
                f"{barred.law.revival}"
            )
        if case.status == "settled":
            return (
                f"{posted}. The settlement is paid: the rest is written off and the case is "
                "settled."
            )
        return f"{posted}."

    return act(case, "payment_form", do)


@bp.post("/cases/<reference>/payments/<int:entry_id>/reverse")
@roles_required("admin", "supervisor")
def reverse(reference: str, entry_id: int):
    case = staff_case(reference)
    payment = db.session.get(LedgerEntry, entry_id)
    if payment is None or payment.case_id != case.id:
        abort(404)

    def do(form):
        entry = reverse_payment(
            db.session,
            payment,
            amount_cents=form.amount.data,
            external_id=new_external_id("reversal"),
            received_at=agency_today(),
            reason=form.reason.data,
            actor=actor(),
        )
        return f"Reversed ${entry.amount_cents / 100:,.2f}; the fee went back with it."

    return act(case, "reversal_form", do)


class UnmatchedForm(FlaskForm):
    amount = MoneyField("Amount", validators=[InputRequired()])
    received_at = DateField("Date received", validators=[DataRequired()])
    method = SelectField("Method", choices=["check", "ach", "wire", "cash", "card"])
    reference = StringField(
        "Check number or transaction id", validators=[DataRequired(), Length(max=80)]
    )
    payer = StringField("Payer", validators=[Optional(), Length(max=300)])
    details = TextAreaField("What came with it", validators=[Optional(), Length(max=2000)])


@bp.route("/unmatched", methods=["GET", "POST"])
@roles_required("admin", "supervisor")
def unmatched():
    form = UnmatchedForm()
    status = 200
    if form.validate_on_submit():
        try:
            with attempt():
                hold_unmatched(
                    db.session,
                    external_id=unmatched_external_id(form.method.data, form.reference.data),
                    amount_cents=form.amount.data,
                    received_at=form.received_at.data,
                    method=form.method.data,
                    payer=form.payer.data or "",
                    details=form.details.data or "",
                    actor=actor(),
                    today=agency_today(),
                )
        except ValueError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            flash("Payment kept as unmatched until it is assigned to a case.", "success")
            return redirect(url_for("staff.unmatched"))
    elif request.method == "POST":
        status = 422
    rows = db.session.scalars(
        sa.select(UnmatchedPayment)
        .order_by(UnmatchedPayment.status.desc(), UnmatchedPayment.received_at.desc())
        .limit(200)
    ).all()
    return render_template(
        "agency/unmatched.html", rows=rows, form=form, plain_form=FlaskForm()
    ), status


@bp.post("/unmatched/<int:item_id>/match")
@roles_required("admin", "supervisor")
def match_unmatched(item_id: int):
    item = db.session.get(UnmatchedPayment, item_id) or abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        parts = _shares(request.form.get("reference", ""), item.amount_cents)
        with attempt():
            entries = match(db.session, item, parts, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        where = ", ".join(case.reference for case, _ in parts)
        shares = f" as {len(entries)} shares." if len(entries) > 1 else "."
        flash(f"Posted to {where}{shares}", "success")
    return redirect(url_for("staff.unmatched"))


def _shares(text: str, whole: int) -> list[tuple[Case, int]]:
    """ "RC-2611-00001" (the whole payment), or "RC-2611-00001 100.00, RC-2611-00002 50"
    (a split): the cases and their shares in cents."""
    parts = []
    for chunk in [c.strip() for c in text.replace(";", ",").split(",") if c.strip()]:
        reference, _, amount = chunk.partition(" ")
        case = db.session.scalar(sa.select(Case).where(Case.reference == reference.upper()))
        if case is None:
            raise ValueError(f"No case has the reference {reference}.")
        parts.append((case, parse_cents(amount) if amount.strip() else None))
    if not parts:
        raise ValueError("No case has that reference.")
    if len(parts) == 1 and parts[0][1] is None:
        return [(parts[0][0], whole)]
    if any(cents is None for _, cents in parts):
        raise ValueError("In a split, give each case its amount: RC-… 100.00, RC-… 50.00")
    return parts


@bp.get("/trust")
@roles_required("admin")
def trust():
    return render_template(
        "agency/trust.html", lines=trust_lines(db.session, agency_today()), today=agency_today()
    )
