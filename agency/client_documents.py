"""The client's documents for a dispute, as the agency sees them before it sends the
verification (/agency/cases/<reference>/client-documents). The verification itself is the case
screen's own form (agency.case_papers.verification), which records these documents with it."""

from __future__ import annotations

from flask import render_template

from agency.case_forms import VerificationForm
from agency.casework import staff_case
from agency.staff import bp
from cases.disputes import CLIENT_DOCUMENT, dispute_documents, open_disputes
from shell.extensions import db


@bp.get("/cases/<reference>/client-documents")
def client_documents(reference: str):
    case = staff_case(reference)
    documents = dispute_documents(db.session, case.id)
    mine = [d for d in documents if d.kind == CLIENT_DOCUMENT]
    form = VerificationForm(prefix="ver")
    if mine and not form.note.data:
        form.note.data = "Verification of the debt, with the creditor's documents: " + ", ".join(
            d.filename for d in mine
        )
    return render_template(
        "agency/client_documents.html",
        case=case,
        disputes=open_disputes(db.session, case.id, "dispute"),
        documents=documents,
        client_kind=CLIENT_DOCUMENT,
        form=form,
    )
