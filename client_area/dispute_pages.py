"""The client's disputes (/client/disputes): what the debtor disputes, the documents on file,
what the agency needs, and uploading the client's documents for the verification. Every lookup
is the signed-in client's own (a 404 otherwise)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from cases.disputes import (
    CLIENT_DOCUMENT,
    CLIENT_VISIBLE_DOCUMENTS,
    DisputeError,
    accept_client_document,
    client_dispute,
    client_disputes,
    dispute_documents,
    require_open,
    what_the_agency_needs,
)
from cases.documents import Document
from client_area.forms import DisputeDocumentForm
from client_area.views import actor, bp, own_case
from shell.document_store import UploadRefused, check_upload, inline_response, store
from shell.extensions import db
from shell.unit_of_work import attempt


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


def own_dispute(dispute_id: int):
    try:
        return client_dispute(db.session, current_user.client_id, dispute_id)
    except DisputeError:
        abort(404)


@bp.get("/disputes")
def disputes():
    rows = client_disputes(db.session, current_user.client_id)
    return render_template("client/disputes.html", rows=rows)


@bp.get("/disputes/<int:dispute_id>")
def dispute(dispute_id: int):
    return _dispute_page(dispute_id, DisputeDocumentForm())


def _dispute_page(dispute_id: int, form: DisputeDocumentForm, status: int = 200):
    found, case = own_dispute(dispute_id)
    documents = dispute_documents(db.session, case.id)
    return render_template(
        "client/dispute.html",
        dispute=found,
        case=case,
        documents=documents,
        needs=what_the_agency_needs(found, case, documents),
        form=form,
        client_kind=CLIENT_DOCUMENT,
    ), status


@bp.post("/disputes/<int:dispute_id>/documents")
def dispute_document(dispute_id: int):
    found, case = own_dispute(dispute_id)
    form = DisputeDocumentForm()
    if not form.validate_on_submit():
        return _dispute_page(dispute_id, form, 422)
    upload = form.document.data
    try:
        with attempt() as session:
            require_open(found)
            data = upload.read()
            document = store(
                data,
                filename=upload.filename or "document",
                content_type=check_upload(data),
                kind=CLIENT_DOCUMENT,
                case_id=case.id,
                debtor_id=case.debtor_id,
                uploaded_by_id=current_user.id,
            )
            accept_client_document(session, found, document, actor=actor())
    except UploadRefused as exc:
        form.document.errors.append(_sentence(exc))
        return _dispute_page(dispute_id, form, 422)
    except DisputeError as exc:
        flash(_sentence(exc), "error")
        return _dispute_page(dispute_id, form, 422)
    flash(
        f"Thank you: {document.filename} is with the agency, which sends the verification "
        "to the debtor.",
        "success",
    )
    return redirect(url_for("client_area.dispute", dispute_id=dispute_id))


@bp.get("/cases/<reference>/documents/<int:document_id>")
def case_document(reference: str, document_id: int):
    """A dispute document of the client's own case: the debtor's or the client's own."""
    case = own_case(reference)
    document = db.session.get(Document, document_id)
    if document is None or document.case_id != case.id:
        abort(404)
    if document.kind not in CLIENT_VISIBLE_DOCUMENTS:
        abort(404)
    return inline_response(document)
