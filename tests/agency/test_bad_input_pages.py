"""Bad input on the staff and client pages gives a page or a clear 400, never a 500: page
numbers that are not sane positive integers, NUL bytes in the search box, and uploaded file
names that are not plain ASCII."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case, change_status
from cases.documents import Document
from shell.document_store import store
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
PDF = b"%PDF-1.4 my bank statement"
PNG = b"\x89PNG\r\n\x1a\n fake png"

# Not sane positive integers: too big for any database integer, negative, zero, not numbers.
BAD_PAGES = (
    "99999999999999999999",
    "9223372036854775807",
    "-9223372036854775809",
    "1000000",
    "-1",
    "0",
    "abc",
    "",
    "1.5",
    "1e9",
)


def _counts(db_session) -> tuple[int, int, int]:
    return (
        db_session.scalar(sa.select(sa.func.count(Case.id))),
        db_session.scalar(sa.select(sa.func.count(AuditEvent.id))),
        db_session.scalar(sa.select(sa.func.count(Document.id))),
    )


def _page_number(body: str) -> int:
    return int(re.search(r"<span>Page (\d+)", body).group(1))


def test_the_staff_case_list_shows_the_last_or_first_page_for_any_page_number(
    client, db_session, login, make_user, make_client, make_case, monkeypatch
):
    monkeypatch.setattr("agency.caseload.STAFF_PAGE", 2)
    acme = make_client()
    cases = [make_case(acme, last_name=f"Person{n}") for n in range(5)]  # 3 pages of 2
    login(make_user("supervisor"))
    before = _counts(db_session)

    for page, shown in [(p, 3 if p.isdigit() and int(p) else 1) for p in BAD_PAGES] + [("3", 3)]:
        response = client.get("/agency/cases", query_string={"page": page})
        assert response.status_code == 200, (page, response.status_code)
        body = response.get_data(as_text=True)
        assert _page_number(body) == shown, page
        # The page shows cases, not an empty list (the last page has the oldest case).
        expected = cases[0] if shown == 3 else cases[-1]
        assert expected.reference in body, page
    assert _counts(db_session) == before


def test_the_staff_case_list_on_an_empty_caseload(client, db_session, login, make_user):
    login(make_user("supervisor"))
    for page in BAD_PAGES:
        response = client.get("/agency/cases", query_string={"page": page, "q": "nobody"})
        assert response.status_code == 200, page
        body = response.get_data(as_text=True)
        assert _page_number(body) == 1 and "No cases match." in body


def test_the_client_case_list_shows_the_last_or_first_page_for_any_page_number(
    client, db_session, login, make_user, make_client, make_case, monkeypatch
):
    monkeypatch.setattr("client_area.views.PAGE_SIZE", 2)
    acme = make_client()
    cases = [make_case(acme, last_name=f"Person{n}") for n in range(5)]
    other = make_client("OTHR", "Other Co")
    stranger = make_case(other, last_name="Stranger")
    login(make_user("client", client=acme))
    before = _counts(db_session)

    for page, shown in [(p, 3 if p.isdigit() and int(p) else 1) for p in BAD_PAGES] + [("3", 3)]:
        response = client.get("/client/cases", query_string={"page": page, "sort": "reference"})
        assert response.status_code == 200, (page, response.status_code)
        body = response.get_data(as_text=True)
        assert f"Page {shown} of 3" in body, page
        expected = cases[-1] if shown == 3 else cases[0]
        assert expected.reference in body and stranger.reference not in body, page
    assert _counts(db_session) == before


@pytest.mark.parametrize(("role", "url"), [("supervisor", "/agency"), ("client", "/client")])
def test_a_nul_byte_in_the_search_box_is_a_clear_400(
    client, db_session, login, make_user, make_client, make_case, role, url
):
    acme = make_client()
    make_case(acme, last_name="Anb")
    login(make_user(role, client=acme if role == "client" else None))
    before = _counts(db_session)
    for query in ("q=a%00b", "q=%00", "q=a&status=%00"):
        response = client.get(f"{url}/cases?{query}")
        assert response.status_code == 400, query
        body = response.get_data(as_text=True)
        assert "NUL character" in body and "Something went wrong" not in body, query
    assert _counts(db_session) == before


# --- documents whose names are not plain ASCII ---------------------------------------------

# (the uploaded name, the ASCII fallback, the percent-encoded UTF-8 name)
NAMES = (
    ("factura–enero.pdf", "factura_enero.pdf", "factura%E2%80%93enero.pdf"),
    ("报告.pdf", "document.pdf", "%E6%8A%A5%E5%91%8A.pdf"),
    ('a"b.pdf', "a_b.pdf", "a%22b.pdf"),
    ("Straße; x=1.pdf", "Stra_e_ x_1.pdf", "Stra%C3%9Fe%3B%20x%3D1.pdf"),
)


def _dispute_with(client, case, files):
    url = f"/portal/cases/{case.reference}/dispute"
    data = {"reason": "Not mine.", "csrf_token": csrf_from(client.get(url))}
    data["documents"] = [(io.BytesIO(body), name) for name, body in files]
    return client.post(url, data=data, content_type="multipart/form-data")


def test_uploaded_documents_with_any_name_are_shown_to_staff(
    db_session, signed_in, login, make_client, make_case, make_user
):
    case = make_case(make_client())
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = dt.date(2026, 12, 10)
    client = signed_in(case)
    # Werkzeug's test client cannot send a quote in a multipart file name (browsers send it
    # as %22): that one is kept through the service, the others are uploaded by the debtor.
    uploaded = [name for name, _, _ in NAMES if '"' not in name]
    response = _dispute_with(client, case, [(name, PDF) for name in uploaded])
    assert response.status_code == 200
    store(
        PDF,
        filename='a"b.pdf',
        content_type="application/pdf",
        kind="dispute_upload",
        case_id=case.id,
        debtor_id=case.debtor_id,
    )
    uploads = db_session.scalars(
        sa.select(Document).where(Document.case_id == case.id).order_by(Document.id)
    ).all()
    by_name = {d.filename: d for d in uploads}
    assert sorted(by_name) == sorted(name for name, _, _ in NAMES)

    login(make_user("supervisor"))
    screen = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "factura–enero.pdf" in screen and "a&#34;b.pdf" in screen
    before = _counts(db_session)
    for name, fallback, encoded in NAMES:
        response = client.get(f"/agency/documents/{by_name[name].id}")
        assert response.status_code == 200, name
        assert response.data == PDF and response.mimetype == "application/pdf"
        disposition = response.headers["Content-Disposition"]
        disposition.encode("ascii")  # a header any WSGI server can send
        assert disposition == f"inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert _counts(db_session) == before


def test_the_store_keeps_the_checked_type_s_extension_not_the_uploaded_one(
    db_session, signed_in, login, make_client, make_case, make_user
):
    case = make_case(make_client())
    change_status(db_session, case, "active", actor=ACTOR, reason="notice sent")
    case.validation_period_ends_on = dt.date(2026, 12, 10)
    client = signed_in(case)
    files = [("page.html", PDF), ("photo.PHP", PNG), ("noextension", PDF), ("x.pdf.svg", PNG)]
    assert _dispute_with(client, case, files).status_code == 200
    uploads = db_session.scalars(
        sa.select(Document).where(Document.case_id == case.id).order_by(Document.id)
    ).all()
    suffixes = [d.storage_key.rsplit(".", 1)[-1] for d in uploads]
    assert suffixes == ["pdf", "png", "pdf", "png"]
    assert all(
        re.fullmatch(r"dispute_upload/[0-9a-f]{32}\.(pdf|png)", d.storage_key) for d in uploads
    )

    # The name it is shown under ends as its content does.
    login(make_user("supervisor"))
    before = _counts(db_session)
    responses = [client.get(f"/agency/documents/{d.id}") for d in uploads]
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.mimetype for r in responses] == ["application/pdf", "image/png"] * 2
    assert _counts(db_session) == before
    shown = [r.headers["Content-Disposition"] for r in responses]
    assert shown == [
        "inline; filename=\"page.html.pdf\"; filename*=UTF-8''page.html.pdf",
        "inline; filename=\"photo.PHP.png\"; filename*=UTF-8''photo.PHP.png",
        "inline; filename=\"noextension.pdf\"; filename*=UTF-8''noextension.pdf",
        "inline; filename=\"x.pdf.svg.png\"; filename*=UTF-8''x.pdf.svg.png",
    ]
