"""Validation notices at the agency (/agency/notices), for supervisors: send the waiting
notices now (the daily job's work, on demand), fetch a run's print file and manifest for the
mail house, and record the day the mail house mailed them (its acknowledgement): the validation
periods run from that day. A notice printed from a case screen is confirmed there."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired

from agency.casework import staff_case
from agency.staff import actor, bp
from cases.case import Case
from cases.documents import Document
from cases.notices import NoticeError, NoticeRun, confirm_mailed, confirm_run_mailed
from correspondence.early_out_messages import PRINT_FILE, PRINT_MANIFEST
from correspondence.notice_run import send_notices
from shell.document_store import content_disposition, read
from shell.extensions import db
from shell.security import roles_required
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import attempt

SUPERVISORS = ("admin", "supervisor")


class MailedForm(FlaskForm):
    mailed_on = DateField("Mailed on", validators=[InputRequired()])


WAITING_SHOWN = 100


def _waiting() -> tuple[int, list[Case]]:
    """How many notices wait, and the first of them in mailing order's references (read
    without the lock the run takes)."""
    where = (Case.status == "new", Case.validation_sent_at.is_(None))
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Case).where(*where))
    cases = db.session.scalars(
        sa.select(Case).where(*where).order_by(Case.reference).limit(WAITING_SHOWN)
    ).all()
    return count, list(cases)


@bp.get("/notices")
@roles_required(*SUPERVISORS)
def notices():
    runs = db.session.scalars(sa.select(NoticeRun).order_by(NoticeRun.id.desc()).limit(50)).all()
    unconfirmed = db.session.scalars(
        sa.select(Case)
        .where(
            Case.validation_sent_at.is_not(None),
            Case.validation_mailed_on.is_(None),
            Case.notice_run_id.is_(None),
        )
        .order_by(Case.validation_sent_at)
        .limit(200)
    ).all()
    form = MailedForm()
    form.mailed_on.data = agency_today()
    waiting, waiting_list = _waiting()
    early_out_files = db.session.scalars(
        sa.select(Document)
        .where(Document.kind.in_((PRINT_FILE, PRINT_MANIFEST)))
        .order_by(Document.id.desc())
        .limit(40)
    ).all()
    return render_template(
        "agency/notices.html",
        runs=runs,
        early_out_files=early_out_files,
        waiting=waiting,
        waiting_list=waiting_list,
        unconfirmed=unconfirmed,
        form=form,
    )


@bp.post("/notices/send")
@roles_required(*SUPERVISORS)
def send_notices_now():
    """Send every waiting notice in one print run, and say plainly what happened: how many
    went into which run, and each one held back with its reason."""
    if not FlaskForm().validate_on_submit():
        abort(400)  # no valid CSRF token: nothing sent
    result = send_notices(db.session, today=agency_today(), actor=actor())
    if result.run is not None:
        flash(
            f"{len(result.sent)} notice(s) sent in print run {result.run.id}: hand its print "
            "file and manifest (below) to the mail house, then record the day they mail it.",
            "success",
        )
    elif not result.held:
        flash("No notices were waiting: nothing was sent.", "success")
    if result.held:
        flash(f"{len(result.held)} notice(s) held back and still waiting:", "error")
    for line in result.held:
        flash(f"Held: {line}", "error")
    for kind, references in result.alerts.items():
        if references:
            flash(
                f"{len(references)} alert(s) raised ({kind.replace('_', ' ')}): "
                f"{', '.join(references[:20])}",
                "error",
            )
    return redirect(url_for("staff.notices"))


@bp.post("/notices/runs/<int:run_id>/mailed")
@roles_required(*SUPERVISORS)
def run_mailed(run_id: int):
    run = db.session.get(NoticeRun, run_id) or abort(404)
    form = MailedForm()
    if not form.validate_on_submit():
        flash("Give the day the mail house mailed the notices (YYYY-MM-DD).", "error")
        return redirect(url_for("staff.notices"))
    try:
        with attempt() as session:
            count = confirm_run_mailed(
                session,
                run,
                mailed_on=form.mailed_on.data,
                today=agency_today(),
                zone=agency_zone(),
                actor=actor(),
            )
    except NoticeError as exc:
        flash(f"Not confirmed: {exc}.", "error")
        return redirect(url_for("staff.notices"))
    flash(f"{count} notice(s) confirmed as mailed on {form.mailed_on.data}.", "success")
    return redirect(url_for("staff.notices"))


@bp.post("/cases/<reference>/notice-mailed")
@roles_required(*SUPERVISORS)
def case_notice_mailed(reference: str):
    case = staff_case(reference)
    form = MailedForm()
    back = url_for("staff.case", reference=case.reference)
    if not form.validate_on_submit():
        flash("Give the day the notice was mailed (YYYY-MM-DD).", "error")
        return redirect(back)
    try:
        with attempt() as session:
            confirm_mailed(
                session,
                [case],
                mailed_on=form.mailed_on.data,
                today=agency_today(),
                zone=agency_zone(),
                actor=actor(),
            )
    except NoticeError as exc:
        flash(f"Not confirmed: {exc}.", "error")
        return redirect(back)
    flash(
        f"Notice confirmed as mailed on {form.mailed_on.data}; the validation period ends "
        f"{case.validation_period_ends_on}.",
        "success",
    )
    return redirect(back)


@bp.get("/notices/runs/<int:run_id>.<any(pdf, csv):kind>")
@roles_required(*SUPERVISORS)
def run_file(run_id: int, kind: str):
    run = db.session.get(NoticeRun, run_id) or abort(404)
    document_id = run.print_document_id if kind == "pdf" else run.manifest_document_id
    document = db.session.get(Document, document_id) or abort(404)
    return (
        read(document),
        200,
        {
            "Content-Type": document.content_type,
            "Content-Disposition": content_disposition("attachment", document.filename),
        },
    )


@bp.get("/notices/early-out-files/<int:document_id>")
@roles_required(*SUPERVISORS)
def early_out_file(document_id: int):
    """An early-out run's print file (letters in the client's name) or its manifest."""
    document = db.session.get(Document, document_id)
    if document is None or document.kind not in (PRINT_FILE, PRINT_MANIFEST):
        abort(404)
    return (
        read(document),
        200,
        {
            "Content-Type": document.content_type,
            "Content-Disposition": content_disposition("attachment", document.filename),
        },
    )
