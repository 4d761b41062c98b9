"""The client's early-out page (/client/early-out): its accounts in reminders, which converted to
collection, what debtors replied ("I already paid", "there is a problem"), and the conversion
switch per account and per file."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField

from cases.case import Case
from cases.early_out import EarlyOutReply, converted_cases, set_conversion, terms_of
from cases.referrals import ReferralBatch
from client_area.views import actor, bp, own_case
from shell.extensions import db

SHOWN = 200


class ConversionForm(FlaskForm):
    converts = HiddenField()


@bp.get("/early-out")
def early_out():
    client_id = current_user.client_id
    accounts = db.session.scalars(
        sa.select(Case)
        .where(Case.client_id == client_id, Case.program == "early_out")
        .order_by(Case.due_date, Case.id)
        .limit(SHOWN)
    ).all()
    files = db.session.scalars(
        sa.select(ReferralBatch)
        .where(
            ReferralBatch.client_id == client_id,
            ReferralBatch.id.in_(
                sa.select(Case.batch_id).where(
                    Case.client_id == client_id, Case.program == "early_out"
                )
            ),
        )
        .order_by(ReferralBatch.id.desc())
    ).all()
    replies = db.session.execute(
        sa.select(EarlyOutReply, Case.reference, Case.account_number)
        .join(Case, Case.id == EarlyOutReply.case_id)
        .where(Case.client_id == client_id)
        .order_by(EarlyOutReply.created_at.desc(), EarlyOutReply.id.desc())
        .limit(SHOWN)
    ).all()
    return render_template(
        "early_out/client.html",
        accounts=accounts,
        files=files,
        replies=replies,
        converted=converted_cases(db.session, client_id, SHOWN),
        terms=terms_of(db.session, client_id),
        form=ConversionForm(),
    )


def _converts(form: ConversionForm) -> bool:
    if not form.validate_on_submit() or form.converts.data not in ("on", "off"):
        abort(400)
    return form.converts.data == "on"


@bp.post("/early-out/cases/<reference>/conversion")
def early_out_case_conversion(reference: str):
    converts = _converts(ConversionForm())
    case = own_case(reference)
    if case.program != "early_out":
        flash(f"{case.reference} is no longer an early-out account.", "error")
    else:
        set_conversion(db.session, [case], converts, actor=actor())
        flash(
            f"{case.reference} {'converts' if converts else 'will not convert'} to collection.",
            "success",
        )
    return redirect(url_for("client_area.early_out"))


@bp.post("/early-out/files/<int:batch_id>/conversion")
def early_out_file_conversion(batch_id: int):
    converts = _converts(ConversionForm())
    batch = db.session.get(ReferralBatch, batch_id)
    if batch is None or batch.client_id != current_user.client_id:
        abort(404)
    cases = db.session.scalars(
        sa.select(Case).where(Case.batch_id == batch.id, Case.program == "early_out")
    ).all()
    changed = set_conversion(db.session, list(cases), converts, actor=actor())
    flash(f"{changed} account(s) of {batch.filename} changed.", "success")
    return redirect(url_for("client_area.early_out"))
