"""A client's early-out terms, edited by an admin (/agency/clients/<code>/early-out): the
cadence (day past due, channel, message), the day accounts convert to collection, the early-out
fee (a percentage of what is paid, or a flat fee per account placed), the short plan the debtor
may choose on the client's page, the reply address and the logo. The same rules as `flask earlyout terms` (cases.early_out.set_terms): refused whole with a
clear message, audited when saved."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import InputRequired, NumberRange, Optional

from agency.staff import actor, bp
from cases.clients import Client
from cases.early_out import (
    CHANNELS,
    MAX_PLAN_INSTALLMENTS,
    EarlyOutError,
    set_terms,
    terms_of,
)
from shell.extensions import db
from shell.money import MoneyField, PercentField
from shell.security import roles_required
from shell.unit_of_work import attempt

MAX_STEPS = 8  # rows on the form; an empty day leaves the row out
MESSAGES = (
    SelectChoice("friendly", "Friendly reminder"),
    SelectChoice("firm", "Firmer reminder"),
    SelectChoice("final", "Final notice (names the conversion day)"),
)
CHANNEL_NAMES = {"email": "Email", "text": "Text message", "letter": "Letter"}


class CadenceStepForm(Form):
    day = IntegerField(
        "Day past due",
        validators=[Optional(), NumberRange(1, 365, "A step's day is from 1 to 365.")],
    )
    channel = SelectField("Channel", choices=[SelectChoice(c, CHANNEL_NAMES[c]) for c in CHANNELS])
    tone = SelectField("Message", choices=MESSAGES)


class EarlyOutTermsForm(FlaskForm):
    steps = FieldList(FormField(CadenceStepForm), min_entries=MAX_STEPS, max_entries=MAX_STEPS)
    convert_after_days = IntegerField(
        "Accounts convert to collection on day (past due)",
        validators=[
            InputRequired("Enter the day accounts convert to collection."),
            NumberRange(30, 365, "Accounts convert between day 30 and day 365 past due."),
        ],
    )
    fee_kind = RadioField(
        "Early-out fee",
        choices=[
            SelectChoice("percent", "A percentage of what is paid"),
            SelectChoice("flat", "A flat fee per account placed"),
        ],
        validators=[InputRequired("Choose the early-out fee.")],
    )
    fee_percent = PercentField(
        "Percentage of what is paid",
        validators=[InputRequired("Enter the percentage, like 10%.")],
        description="e.g. 10% or 7.5%; from 0% to 50%",
    )
    flat_fee = MoneyField(
        "Flat fee per account placed (dollars)",
        validators=[Optional()],
        description="e.g. 5.00; from $0 to $1,000; empty: $0",
    )
    plan_max_installments = IntegerField(
        "Plans on the client's page: up to how many installments",
        validators=[
            InputRequired("Enter up to how many installments (0: no plans)."),
            NumberRange(0, MAX_PLAN_INSTALLMENTS, f"From 0 to {MAX_PLAN_INSTALLMENTS}."),
        ],
        description=f"from 2 to {MAX_PLAN_INSTALLMENTS}; 0: no plans offered",
    )
    plan_frequency = SelectField(
        "Plan installments fall due",
        choices=[SelectChoice("monthly", "Monthly"), SelectChoice("biweekly", "Every two weeks")],
    )
    reply_to = StringField("Reply address on the client's emails", validators=[Optional()])
    logo = StringField(
        "Logo (a path under static/)",
        validators=[Optional()],
        description="e.g. img/acme.png; empty: the client's name only",
    )


def _client(code: str) -> Client:
    return db.session.scalar(sa.select(Client).where(Client.code == code)) or abort(404)


def _fill(form: EarlyOutTermsForm, client: Client) -> None:
    terms = terms_of(db.session, client.id)
    for row, step in zip(form.steps, terms.cadence, strict=False):
        row.form.day.data = step["day"]
        row.form.channel.data = step["channel"]
        row.form.tone.data = step["tone"]
    form.convert_after_days.data = terms.convert_after_days
    form.fee_kind.data = terms.fee_kind
    form.fee_percent.data = terms.fee_bps
    form.flat_fee.data = terms.flat_fee_cents
    form.plan_max_installments.data = terms.plan_max_installments
    form.plan_frequency.data = terms.plan_frequency
    form.reply_to.data = terms.reply_to or ""
    form.logo.data = terms.logo_path or ""


def _cadence(form: EarlyOutTermsForm) -> list[dict]:
    return [
        {"day": row.form.day.data, "channel": row.form.channel.data, "tone": row.form.tone.data}
        for row in form.steps
        if row.form.day.data is not None
    ]


@bp.route("/clients/<code>/early-out", methods=["GET", "POST"])
@roles_required("admin")
def early_out_terms(code: str):
    client = _client(code)
    form = EarlyOutTermsForm()
    status = 200
    if request.method == "GET":
        _fill(form, client)
    elif form.validate_on_submit():
        try:
            with attempt():
                set_terms(
                    db.session,
                    client,
                    actor=actor(),
                    cadence=_cadence(form),
                    convert_after_days=form.convert_after_days.data,
                    fee_kind=form.fee_kind.data,
                    fee_bps=form.fee_percent.data,
                    flat_fee_cents=form.flat_fee.data or 0,
                    plan_max_installments=form.plan_max_installments.data,
                    plan_frequency=form.plan_frequency.data,
                    reply_to=(form.reply_to.data or "").strip(),
                    logo_path=(form.logo.data or "").strip(),
                )
        except EarlyOutError as exc:
            flash(f"Not saved: {exc}.", "error")
            status = 422
        else:
            flash(f"Early-out terms of {client.code} saved.", "success")
            return redirect(url_for("staff.early_out_terms", code=client.code))
    else:
        status = 422
        flash("Not saved: correct the fields marked below.", "error")
    return render_template(
        "agency/early_out_terms.html", client=client, form=form, max_steps=MAX_STEPS
    ), status
