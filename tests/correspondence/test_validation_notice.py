"""The validation notice: Reg F model form B-1 content, dates, languages, and activation."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from pypdf import PdfReader

from cases.contacts import Contact
from cases.documents import Document
from tests.conftest import csrf_from

MONDAY = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture(autouse=True)
def on_monday(fixed_day):
    with time_machine.travel(MONDAY, tick=False):
        yield


def send(client, case):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/validation-notice", data={"csrf_token": csrf_from(page)}
    )


def pdf_text(client, document_id) -> str:
    response = client.get(f"/agency/documents/{document_id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_sending_the_notice_activates_the_case_with_the_right_dates(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(
        make_client(),
        principal=120_000,
        interest=3_456,
        fees=2_500,
        state="CA",
        postal_code="94103",
        phone="+14155550100",
    )
    assert send(client, case).status_code == 302
    db_session.refresh(case)
    assert case.status == "active"
    # Sent Monday Nov 23; Thanksgiving (Nov 26) is not a business day: assumed received
    # Tuesday Dec 1; the validation period ends 30 days later.
    assert case.validation_period_ends_on == dt.date(2026, 12, 31)
    letter = db_session.scalar(sa.select(Contact).where(Contact.case_id == case.id))
    assert (letter.channel, letter.direction, letter.subject) == (
        "letter",
        "outbound",
        "Validation notice",
    )
    document = db_session.get(Document, letter.document_id)
    assert document.kind == "validation_notice"

    text = pdf_text(client, document.id)
    assert "is a debt collector" in text
    assert "Acme Plumbing" in text
    assert "$1,200.00" in text and "+ $34.56" in text and "+ $25.00" in text
    assert "Total amount of the debt now: $1,259.56" in text
    assert "December 31, 2026" in text
    assert "Notice to California residents" in text and "1-877-FTC-HELP" in text


def test_a_spanish_speaking_debtor_gets_the_notice_in_spanish(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), principal=50_000)
    case.debtor.language = "es"
    send(client, case)
    letter = db_session.scalar(sa.select(Contact).where(Contact.case_id == case.id))
    text = pdf_text(client, letter.document_id)
    assert "es un cobrador de deudas" in text
    assert "Cantidad total de la deuda ahora: $500.00" in text
    assert "31/12/2026" in text
    assert "California" not in text


def test_the_notice_is_sent_once_and_only_when_something_is_owed(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    active = make_case(make_client(), status="active")
    response = send(client, active)
    assert response.status_code == 302
    assert "sent once, to a new case" in client.get(f"/agency/cases/{active.reference}").get_data(
        as_text=True
    )
    nothing = make_case(active.client, principal=0, interest=0, fees=0)
    send(client, nothing)
    assert "nothing is owed" in client.get(f"/agency/cases/{nothing.reference}").get_data(
        as_text=True
    )
    db_session.refresh(nothing)
    assert nothing.status == "new"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0
