""" "Next case" and skipping a case (/agency/queue/next, /agency/cases/<ref>/skip): the queue
moves on past what the collector worked or skipped today (cases/queue_holds.py)."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, StringField
from wtforms.validators import Optional

from agency.casework import staff_case
from agency.staff import actor, bp
from cases.model import utcnow
from cases.queue import queue_for
from cases.queue_holds import HoldError, held_case_ids, skip
from shell.extensions import db
from shell.timezone import agency_day_started_at, agency_local_to_utc, agency_today
from shell.unit_of_work import attempt


class SkipForm(FlaskForm):
    reason = StringField("Why skip it?")
    callback_at = DateTimeLocalField(
        "Call back at (optional, agency time)", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


@bp.get("/queue/next")
def next_case():
    now = utcnow()
    held = held_case_ids(
        db.session, current_user.id, now=now, day_started_at=agency_day_started_at()
    )
    rows = queue_for(
        db.session,
        current_user.id,
        now=now,
        today=agency_today(),
        limit=1,
        only="callable",
        exclude=held,
    )
    if not rows:
        flash(
            "Nothing to call right now: no case in your queue may be called at this hour"
            + (
                f", and the {len(held)} case(s) you worked or skipped today come back tomorrow"
                " or at their callback time."
                if held
                else "."
            ),
            "info",
        )
        return redirect(url_for("staff.queue"))
    return redirect(url_for("staff.case", reference=rows[0].case.reference))


@bp.post("/cases/<reference>/skip")
def skip_case(reference: str):
    case = staff_case(reference)
    form = SkipForm()
    if not form.validate_on_submit():
        errors = [e for field in form for e in field.errors]
        flash(
            "Not skipped: "
            + ("; ".join(errors) if errors else "the form expired, try again")
            + " (e.g. 2026-12-07T15:30 for the callback time).",
            "error",
        )
        return redirect(url_for("staff.case", reference=case.reference))
    callback_at = agency_local_to_utc(form.callback_at.data) if form.callback_at.data else None
    try:
        with attempt():
            skip(
                db.session,
                case,
                user_id=current_user.id,
                reason=form.reason.data or "",
                callback_at=callback_at,
                now=utcnow(),
                actor=actor(),
            )
    except HoldError as exc:
        flash(f"Not skipped: {exc}", "error")
        return redirect(url_for("staff.case", reference=case.reference))
    flash(f"{case.reference} skipped.", "success")
    return redirect(url_for("staff.next_case"))
