"""The case screen's papers: disputes and the verification that answers them, letters, the
validation notice, and the documents kept with a case."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from agency.casework import act, staff_case
from agency.staff import actor, bp
from cases.case import Case, TransitionError
from cases.contact_log import ContactRefused, gate, record_contact
from cases.disputes import DisputeError, record_dispute, send_original_creditor, send_verification
from cases.documents import Document
from cases.model import utcnow
from cases.notices import NoticeError, letter_data, letter_purpose
from correspondence.notice_run import send_notice
from correspondence.pdf import agency_letterhead, render_pdf
from shell.document_store import check_upload, inline_response, store
from shell.extensions import db
from shell.timezone import agency_today, agency_zone
from shell.unit_of_work import attempt


@bp.post("/cases/<reference>/disputes")
def dispute(reference: str):
    case = staff_case(reference)

    def do(form):
        d = record_dispute(
            db.session,
            case,
            reason=form.reason.data,
            channel=form.channel.data,
            received_at=_arrived(form.received_at.data),
            actor=actor(),
            kind=form.kind.data,
        )
        store_upload(form.document.data, case, "dispute_upload")
        what = "Dispute" if d.kind == "dispute" else "Request for the original creditor"
        if d.within_validation_period:
            answer = "verification" if d.kind == "dispute" else "the original creditor's name"
            return f"{what} recorded. The case is on hold until {answer} is sent."
        return f"{what} recorded (outside the validation period: flagged, not held)."

    return act(case, "dispute_form", do)


def _arrived(value: dt.datetime | None) -> dt.datetime:
    """A datetime-local input is in the agency's zone; empty means now."""
    if value is None:
        return utcnow()
    arrived = value.replace(tzinfo=agency_zone()).astimezone(dt.UTC)
    if arrived > utcnow():
        raise DisputeError("a request cannot have arrived in the future")
    return arrived


@bp.post("/cases/<reference>/original-creditor")
def original_creditor(reference: str):
    """Send the original creditor's name and address (1006.38(c)): the request's hold ends."""
    case = staff_case(reference)

    def do(form):
        if not (case.original_creditor_name or "").strip():
            raise DisputeError(
                "the referral gave no original creditor's name: ask the client for it first"
            )
        letter = _send_letter(case, "original_creditor")
        send_original_creditor(
            db.session, case, document_id=letter.id, actor=actor(), on_local=agency_today()
        )
        return "The original creditor's name and address were sent; collection may resume."

    return act(case, "plain_form", do)


def store_upload(upload, case: Case, kind: str) -> Document | None:
    """Keep an uploaded document with the case (refusing anything but PDF/PNG/JPEG)."""
    if not upload or not upload.filename:
        return None
    data = upload.read()
    content_type = check_upload(data)
    return store(
        data,
        filename=upload.filename,
        content_type=content_type,
        kind=kind,
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=current_user.id,
    )


@bp.post("/cases/<reference>/verification")
def verification(reference: str):
    """Send the verification letter (with the client's documents, if any): the hold ends."""
    case = staff_case(reference)

    def do(form):
        store_upload(form.document.data, case, "verification")
        letter = _send_letter(case, "verification", note=form.note.data)
        send_verification(
            db.session,
            case,
            document_id=letter.id,
            actor=actor(),
            note=form.note.data,
            on_local=agency_today(),
        )
        return "Verification sent; collection may resume."

    return act(case, "verification_form", do)


@bp.post("/cases/<reference>/letters")
def letter(reference: str):
    case = staff_case(reference)

    def do(form):
        _send_letter(case, form.kind.data)
        return "Letter generated and recorded as sent."

    return act(case, "letter_form", do)


def _send_letter(case: Case, kind: str, note: str = "") -> Document:
    """Render a letter, refuse it if a rule forbids it, keep it and record it as sent."""
    purpose = letter_purpose(kind)
    now = utcnow()
    gate(db.session, case, "letter", now, purpose=purpose)
    data = letter_data(
        db.session, case, kind, on=agency_today(), agency=agency_letterhead(), note=note
    )
    pdf = render_pdf("pdf/letter.html", l=data)
    document = store(
        pdf,
        filename=f"{kind}-{case.reference}.pdf",
        content_type="application/pdf",
        kind="letter",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=current_user.id,
    )
    record_contact(
        db.session,
        case,
        channel="letter",
        direction="outbound",
        occurred_at=now,
        actor=actor(),
        subject=data["title"],
        document_id=document.id,
        purpose=purpose,
    )
    return document


@bp.post("/cases/<reference>/validation-notice")
def validation_notice(reference: str):
    case = staff_case(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            send_validation_notice(case, actor=actor())
    except (NoticeError, TransitionError, ContactRefused) as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.case", reference=case.reference))
    flash("Validation notice generated and sent; the case is active.", "success")
    return redirect(url_for("staff.case", reference=case.reference))


def send_validation_notice(case: Case, *, actor) -> Document:
    """Generate the notice in the debtor's language, keep it, mark it sent (printed here: its
    mailing is confirmed on the case screen)."""
    return send_notice(
        db.session, case, actor=actor, sent_at=utcnow(), sent_on=agency_today()
    ).document


@bp.get("/documents/<int:document_id>")
def document(document_id: int):
    doc = db.session.get(Document, document_id) or abort(404)
    return inline_response(doc)
