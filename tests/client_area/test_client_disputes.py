"""The client's side of disputes: it sees its own, uploads documents, and the agency's
verification (with them) lifts the hold. Tenancy: never another client's dispute or document."""

import datetime as dt
import io

import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.documents import Document
from tests.conftest import PASSWORD, csrf_from, portal_sign_in
from tests.portal.test_portal_requests import _active, _dispute

NY = dt.timezone(dt.timedelta(hours=-5))
MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=NY)
PDF = b"%PDF-1.4 signed agreement"


def sign_in(test_client, user):
    page = test_client.get("/login")
    response = test_client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    return test_client


def upload_document(test_client, dispute_id, body, name="agreement.pdf"):
    page = test_client.get(f"/client/disputes/{dispute_id}")
    return test_client.post(
        f"/client/disputes/{dispute_id}/documents",
        data={"csrf_token": csrf_from(page), "document": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def disputed_case(app, db_session, make_client, make_case, code="ACME", last_name="Garcia"):
    """A case of client `code` that its debtor disputed in the portal, with a document."""
    case = _active(db_session, make_case(make_client(code), last_name=last_name))
    debtor = app.test_client()
    portal_sign_in(debtor, case.reference, last_name, "10001")
    response = _dispute(debtor, case, "I never had an account with you.", [("id.pdf", PDF)])
    assert response.status_code == 200
    db_session.refresh(case)
    assert case.status == "disputed"
    return case


def only_dispute_id(db_session, case):
    from cases.disputes import Dispute

    return db_session.scalar(sa.select(Dispute.id).where(Dispute.case_id == case.id))


def test_the_whole_loop_client_documents_then_verification_lifts_the_hold(
    app, client, make_user, make_client, make_case, db_session
):
    case = disputed_case(app, db_session, make_client, make_case)
    dispute_id = only_dispute_id(db_session, case)
    sign_in(client, make_user("client", client=case.client))

    dashboard = client.get("/client/").get_data(as_text=True)
    assert "1 open dispute on your cases" in dashboard
    listing = client.get("/client/disputes").get_data(as_text=True)
    assert case.reference in listing and "collection on hold" in listing
    page = client.get(f"/client/disputes/{dispute_id}").get_data(as_text=True)
    assert "I never had an account with you." in page
    assert "What the agency needs from you" in page and "signed agreement or contract" in page
    assert "id.pdf" in page and "the debtor" in page
    debtor_doc = db_session.scalar(sa.select(Document).where(Document.kind == "dispute_upload"))
    shown = client.get(f"/client/cases/{case.reference}/documents/{debtor_doc.id}")
    assert shown.status_code == 200 and shown.data == PDF

    response = upload_document(client, dispute_id, PDF)
    assert response.status_code == 302
    page = client.get(f"/client/disputes/{dispute_id}").get_data(as_text=True)
    assert (
        "is with the agency" in page
        and "agreement.pdf" in page
        and "We have your documents" in page
    )
    [mine] = db_session.scalars(
        sa.select(Document).where(Document.kind == "client_verification")
    ).all()
    assert (mine.case_id, mine.content_type, mine.size_bytes) == (
        case.id,
        "application/pdf",
        len(PDF),
    )
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "dispute.client_document")
        )
        == 1
    )

    # The agency sees the client's document and sends the verification: the hold lifts.
    agency = sign_in(app.test_client(), make_user("collector"))
    with time_machine.travel(MORNING, tick=False):
        case_screen = agency.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
        assert f"/agency/cases/{case.reference}/client-documents" in case_screen
        screen = agency.get(f"/agency/cases/{case.reference}/client-documents")
        text = screen.get_data(as_text=True)
        assert screen.status_code == 200
        assert "agreement.pdf" in text and "the client" in text
        assert f"/agency/documents/{mine.id}" in text
        assert agency.get(f"/agency/documents/{mine.id}").data == PDF
        response = agency.post(
            f"/agency/cases/{case.reference}/verification",
            data={"csrf_token": csrf_from(screen), "ver-note": "Agreement enclosed"},
        )
        assert response.status_code == 302
    db_session.refresh(case)
    assert case.status == "active"
    verified = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "dispute.verified")
    )
    assert verified.detail["client_documents"] == [mine.id]

    page = client.get(f"/client/disputes/{dispute_id}").get_data(as_text=True)
    assert "verification sent" in page and "What the agency needs" not in page
    # Answered: no more uploads, and a late one is refused and changes nothing.
    assert "Upload document" not in page
    response = upload_document(client, dispute_id, PDF, "late.pdf")
    assert response.status_code == 422
    assert "no more documents are needed" in response.get_data(as_text=True)
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(Document).where(Document.filename == "late.pdf")
        )
        == 0
    )


def test_a_bad_document_is_refused_with_the_reason_and_changes_nothing(
    app, client, make_user, make_client, make_case, db_session, monkeypatch
):
    # The 10 MB limit, scaled down so the test client need not build a 10 MB body.
    monkeypatch.setattr("shell.document_store.MAX_UPLOAD_BYTES", 4096)
    case = disputed_case(app, db_session, make_client, make_case)
    dispute_id = only_dispute_id(db_session, case)
    sign_in(client, make_user("client", client=case.client))
    for body, name, message in (
        (b"MZ\x90\x00 a program", "invoice.exe", "Documents must be PDF, PNG or JPEG files."),
        (b"", "empty.pdf", "The file is empty."),
        (b"%PDF-" + b"x" * 4096, "huge.pdf", "Documents can be at most 10 MB."),
    ):
        response = upload_document(client, dispute_id, body, name)
        assert response.status_code == 422, name
        assert message in response.get_data(as_text=True), name
    assert (
        db_session.scalar(
            sa.select(sa.func.count())
            .select_from(Document)
            .where(Document.kind == "client_verification")
        )
        == 0
    )
    db_session.refresh(case)
    assert case.status == "disputed"


def test_a_client_sees_only_its_own_disputes_and_documents(
    app, client, make_user, make_client, make_case, db_session
):
    theirs = disputed_case(app, db_session, make_client, make_case, "BETA", "Okafor")
    their_dispute = only_dispute_id(db_session, theirs)
    their_doc = db_session.scalar(sa.select(Document.id).where(Document.case_id == theirs.id))
    acme = make_client("ACME")
    sign_in(client, make_user("client", client=acme))
    assert theirs.reference not in client.get("/client/disputes").get_data(as_text=True)
    assert client.get(f"/client/disputes/{their_dispute}").status_code == 404
    assert upload_document(client, their_dispute, PDF).status_code == 404
    assert client.get(f"/client/cases/{theirs.reference}/documents/{their_doc}").status_code == 404
    # Nor a document of its own case that is not a dispute document (a letter, say).
    mine = make_case(acme)
    letter = Document(
        case_id=mine.id,
        kind="letter",
        filename="letter.pdf",
        content_type="application/pdf",
        size_bytes=3,
        sha256="0" * 64,
        storage_key="letter/x.pdf",
    )
    db_session.add(letter)
    db_session.flush()
    assert client.get(f"/client/cases/{mine.reference}/documents/{letter.id}").status_code == 404
    assert client.get(f"/client/cases/{mine.reference}/documents/{their_doc}").status_code == 404
    # Staff pages stay staff-only.
    assert client.get(f"/agency/cases/{theirs.reference}/client-documents").status_code in (
        302,
        403,
    )
