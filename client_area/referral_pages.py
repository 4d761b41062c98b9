"""The client's referral files (/client/referrals): upload, match the columns when ours are not
found, preview, confirm or cancel, follow the import and download the rejected rows."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from cases.csvsafe import write_csv
from cases.referral_file import (
    KNOWN_COLUMNS,
    REQUIRED_COLUMNS,
    FileRefused,
    Source,
    guess_mapping,
    missing_after_mapping,
    raw_rows,
    read_header,
    sample_values,
)
from cases.referrals import (
    ReferralBatch,
    apply_mapping,
    cancel,
    confirm,
    hold_for_mapping,
    preview,
    preview_rows,
)
from client_area.forms import UploadForm
from client_area.views import actor, bp
from shell.extensions import db
from shell.referral_store import forget, source_of, store_referral_file
from shell.timezone import agency_today
from shell.unit_of_work import attempt


def own_batch(batch_id: int) -> ReferralBatch:
    batch = db.session.get(ReferralBatch, batch_id)
    if batch is None or batch.client_id != current_user.client_id:
        abort(404)
    return batch


def _referrals_page(form: UploadForm, status: int = 200):
    batches = db.session.scalars(
        sa.select(ReferralBatch)
        .where(ReferralBatch.client_id == current_user.client_id)
        .order_by(ReferralBatch.created_at.desc(), ReferralBatch.id.desc())
        .limit(100)
    ).all()
    return render_template("client/referrals.html", batches=batches, form=form), status


@bp.get("/referrals")
def referrals():
    return _referrals_page(UploadForm())


@bp.post("/referrals")
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return _referrals_page(form, 422)
    upload = form.file.data
    filename = upload.filename or "upload.csv"
    client = current_user.client
    # Copied into the document store in chunks (Werkzeug has spooled a large upload to disk);
    # every check below reads the stored copy as a stream.
    document, data = store_referral_file(upload.stream, filename, uploaded_by_id=current_user.id)
    try:
        with attempt():
            batch = preview(
                db.session,
                client,
                data,
                filename,
                as_of=agency_today(),
                actor=actor(),
                early_out_attested=form.early_out_attested.data,
                document=document,
            )
    except FileRefused as exc:
        if _needs_mapping(data, filename, str(exc)):
            batch = hold_for_mapping(
                db.session,
                client,
                data,
                filename,
                as_of=agency_today(),
                actor=actor(),
                early_out_attested=form.early_out_attested.data,
                document=document,
            )
            flash(
                f"We did not find all of our columns by name in {filename}. Match your columns "
                "to ours below: the ones we recognised are already chosen.",
                "info",
            )
            return redirect(url_for("client_area.mapping", batch_id=batch.id))
        forget(document)  # its record is rolled back with nothing else written
        db.session.delete(document)
        form.file.errors.append(str(exc))
        return _referrals_page(form, 422)
    return redirect(url_for("client_area.batch", batch_id=batch.id))


def _needs_mapping(data: Source, filename: str, message: str) -> bool:
    """A readable file refused only for its column names can be mapped."""
    try:
        read_header(data, filename)
    except FileRefused:
        return False
    return "column" in message.lower()


@bp.route("/referrals/<int:batch_id>/mapping", methods=["GET", "POST"])
def mapping(batch_id: int):
    batch = own_batch(batch_id)
    if batch.status != "mapping":
        return redirect(url_for("client_area.batch", batch_id=batch.id))
    header = [h for h in read_header(source_of(batch), batch.filename) if h.strip()]
    # What the client chose before (for these headers), else our guesses from the names.
    current = guess_mapping(header)
    saved = current_user.client.header_mapping or {}
    current.update({ours: theirs for theirs, ours in saved.items() if theirs in header})
    status = 200
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400)
        current = {}
        for ours in KNOWN_COLUMNS:
            theirs = request.form.get(f"map-{ours}", "")
            if theirs and theirs in header:
                current[ours] = theirs
        problem = _mapping_problem(current)
        if problem is None:
            try:
                with attempt():
                    apply_mapping(
                        db.session,
                        batch,
                        {theirs: ours for ours, theirs in current.items()},
                        actor=actor(),
                        source=source_of(batch),
                    )
            except FileRefused as exc:
                problem = str(exc)
        if problem is None:
            flash("Columns matched. We will use this mapping for your next files too.", "success")
            return redirect(url_for("client_area.batch", batch_id=batch.id))
        flash(problem, "error")
        status = 422
    return render_template(
        "client/mapping.html",
        batch=batch,
        header=header,
        current=current,
        samples=sample_values(source_of(batch), batch.filename),
        known=KNOWN_COLUMNS,
        required=REQUIRED_COLUMNS,
        form=FlaskForm(),
    ), status


def _mapping_problem(chosen: dict[str, str]) -> str | None:
    """Why a mapping (ours -> theirs) cannot be used, in the form's own words; None if it can."""
    by_theirs: dict[str, list[str]] = {}
    for ours, theirs in chosen.items():
        by_theirs.setdefault(theirs, []).append(ours)
    for theirs, ours in by_theirs.items():
        if len(ours) > 1:
            return f"You chose '{theirs}' for {' and '.join(ours)}. Choose it for one only."
    missing = missing_after_mapping({theirs: ours for ours, theirs in chosen.items()})
    if missing:
        return f"Still missing: choose your column for {', '.join(missing)}."
    return None


@bp.get("/referrals/<int:batch_id>")
def batch(batch_id: int):
    batch = own_batch(batch_id)
    if batch.status == "mapping":
        return redirect(url_for("client_area.mapping", batch_id=batch.id))
    previewed = batch.status == "previewed"
    header, rows = preview_rows(batch, source_of(batch)) if previewed else ([], [])
    return render_template(
        "client/batch.html", batch=batch, form=FlaskForm(), header=header, rows=rows
    )


@bp.get("/referrals/<int:batch_id>/status.json")
def batch_status(batch_id: int):
    batch = own_batch(batch_id)
    db.session.refresh(batch)
    return jsonify(
        status=batch.status,
        processed=batch.processed_rows,
        total=batch.total_rows,
        percent=batch.percent_done,
        accepted=batch.accepted_count,
        rejected=batch.rejected_count,
    )


@bp.post("/referrals/<int:batch_id>/confirm")
def batch_confirm(batch_id: int):
    batch = own_batch(batch_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            confirm(db.session, batch, actor=actor())  # the import job is sent after the commit
    except ValueError as exc:
        flash(str(exc), "error")
    return redirect(url_for("client_area.batch", batch_id=batch.id))


@bp.post("/referrals/<int:batch_id>/cancel")
def batch_cancel(batch_id: int):
    batch = own_batch(batch_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            cancel(db.session, batch, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        flash("The file was set aside; nothing was imported.", "info")
    return redirect(url_for("client_area.referrals"))


@bp.get("/referrals/<int:batch_id>/rejected.csv")
def batch_rejected(batch_id: int):
    """The rejected rows as the client sent them, with a `reason` column, to fix and re-upload."""
    batch = own_batch(batch_id)
    reasons = {
        r["row"]: f"{r['column']}: {r['reason']}" if r["column"] else r["reason"]
        for r in batch.rejected
    }
    header, rows = raw_rows(source_of(batch), batch.filename)
    body = write_csv(
        ([*cells, reasons[number]] for number, cells in rows if number in reasons),
        [*header, "reason"],
    )
    name = f"rejected-rows-{batch.id}.csv"
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
