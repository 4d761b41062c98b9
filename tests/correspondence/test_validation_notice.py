"""The validation notice: Reg F model form B-1 content, dates, languages, and activation."""

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from pypdf import PdfReader

from cases import audit
from cases.contacts import Contact
from cases.documents import Document
from correspondence.validation_notice import STATE_NOTICES, state_notice, written_date
from payments.posting import post_adjustment, post_payment
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


def referred(case, **lines):
    """Give a case the itemisation its referral would have: $1,100.00 owed on the charge-off
    date, then $30.00 interest and $25.00 fees, $80.00 paid and $20.00 credited; the case must
    have $1,055.00 placed."""
    values = {
        "itemization_date": dt.date(2026, 1, 31),
        "itemization_date_type": "charge_off",
        "amount_on_itemization_date_cents": 110_000,
        "interest_since_itemization_cents": 3_000,
        "fees_since_itemization_cents": 2_500,
        "payments_since_itemization_cents": 8_000,
        "credits_since_itemization_cents": 2_000,
    } | lines
    for name, value in values.items():
        setattr(case, name, value)
    return case


def sent_text(client, db_session, case) -> str:
    """Send the notice and read back the one document mailed."""
    assert send(client, case).status_code == 302
    (letter,) = db_session.scalars(sa.select(Contact).where(Contact.case_id == case.id)).all()
    return pdf_text(client, letter.document_id)


def test_sending_the_notice_activates_the_case_with_the_right_dates(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), principal=105_500)
    referred(case)
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
    assert "Recourse Collections is a debt collector" in text
    assert "Acme Plumbing" in text
    assert "Call or write to us by December 31, 2026, to dispute all or part of the debt" in text
    assert "If you write to us by December 31, 2026" in text
    assert "November 23, 2026" in text  # the day it is sent, written out too


def test_the_itemisation_shows_the_referrals_five_lines_and_the_reference_dates_kind(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = referred(make_case(make_client(), principal=105_500))
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "Owed on 2026-01-31 (charge off)" in page and "itemization-problem" not in page
    text = sent_text(client, db_session, case)
    assert "As of January 31, 2026, you owed: $1,100.00" in text
    assert "Between January 31, 2026 and today:" in text
    assert "You were charged this amount in interest: + $30.00" in text
    assert "You were charged this amount in fees: + $25.00" in text
    assert "You paid or were credited this amount toward the debt: – $100.00" in text
    assert "Total amount of the debt now: $1,055.00" in text
    assert 1_100_00 + 30_00 + 25_00 - 100_00 == 1_055_00
    assert "January 31, 2026 is the date the debt was charged off." in text


def test_payments_and_credits_recorded_after_referral_join_the_since_line(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = referred(make_case(make_client(), principal=105_500))
    post_payment(
        db_session,
        case,
        5_500,
        external_id="chk-77",
        received_at=dt.date(2026, 11, 20),
        method="check",
        actor=audit.Actor(None, "test"),
    )
    post_adjustment(
        db_session,
        case,
        -1_000,
        reason="goodwill",
        received_at=dt.date(2026, 11, 20),
        actor=audit.Actor(None, "test"),
    )
    text = sent_text(client, db_session, case)
    assert "You paid or were credited this amount toward the debt: – $165.00" in text
    assert "You were charged this amount in fees: + $25.00" in text  # not the adjustment
    assert "Total amount of the debt now: $990.00" in text


def test_an_itemisation_that_does_not_add_up_is_not_sent(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = referred(make_case(make_client(), principal=105_500), credits_since_itemization_cents=0)
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert (
        'id="itemization-problem">The itemisation does not add up: the itemisation makes '
        "$1,075.00 but the ledger&#39;s balance is $1,055.00." in page
    )
    send(client, case)
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "the itemisation does not add up (the itemisation makes $1,075.00 but the" in page
    db_session.refresh(case)
    assert case.status == "new" and case.validation_sent_at is None
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Document)) == 0


def test_the_notice_follows_model_form_b1_in_full(
    app, client, login, make_user, make_client, make_case, db_session, monkeypatch
):
    monkeypatch.setitem(app.config, "PORTAL_URL", "https://pay.example-agency.com/portal")
    login(make_user("collector"))
    case = make_case(make_client(), principal=50_000)
    text = sent_text(client, db_session, case)
    assert "We accept disputes electronically at https://pay.example-agency.com/portal." in text
    assert "We accept such requests electronically at https://pay.example-agency.com/portal" in (
        text
    )
    assert "http://127.0.0.1:5000" not in text
    assert (
        "Go to www.cfpb.gov/debt-collection to learn more about your rights under federal law. "
        "For instance, you have the right to stop or limit how we contact you." in text
    )
    assert "Contact us about your payment options." in text
    assert (
        "Póngase en contacto con nosotros para solicitar una copia de este formulario en español"
        in (text)
    )
    # The response form: where to mail it, and the debtor's own mailing address on it.
    form = text[text.index("Mail this form to:") :]
    assert "Maria Garcia 1 Main St Town NY 10001" in form
    assert "How do you want to respond? Check all that apply:" in form
    assert "I want you to send me the name and address of the original creditor." in form
    assert (
        f"Make your check payable to Recourse Collections. Include the reference number {case.reference}."
        in form
    )
    assert "Quiero este formulario en español." in form
    # English only for a debtor whose language is English.
    assert "es un cobrador de deudas" not in text


def test_a_spanish_speaking_debtor_gets_the_english_and_the_spanish_notice_in_one_mailing(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), principal=50_000)
    case.debtor.language = "es"
    text = sent_text(client, db_session, case)  # one contact, one document
    english, spanish = text.split("Referencia:", 1)
    assert "Recourse Collections is a debt collector" in english
    assert "Call or write to us by December 31, 2026" in english
    assert "Recourse Collections es un cobrador de deudas" in spanish
    assert "Cantidad total de la deuda ahora: $500.00" in spanish
    assert (
        "Llámenos o escríbanos a más tardar el 31 de diciembre de 2026 para disputar toda la "
        "deuda o parte de ella." in spanish
    )
    assert "Si nos escribe a más tardar el 31 de diciembre de 2026" in spanish
    assert "usted tiene derecho a impedir o limitar la forma en que nos comunicamos con usted" in (
        spanish
    )
    assert "23 de noviembre de 2026" in spanish
    assert "antes del" not in spanish and "31/12/2026" not in text and "12/31/2026" not in text
    assert "is a debt collector" not in spanish
    (document,) = db_session.scalars(sa.select(Document)).all()
    assert document.filename.endswith("-en-es.pdf")


@pytest.mark.parametrize(
    ("state", "postal_code", "phone", "expected", "absent"),
    [
        ("MA", "02108", "+16175550100", "NOTICE OF IMPORTANT RIGHTS", "California"),
        ("CA", "94103", "+14155550100", "Notice to California residents", "IMPORTANT RIGHTS"),
    ],
)
def test_a_state_that_requires_its_own_notice_gets_it_with_the_validation_notice(
    client,
    login,
    make_user,
    make_client,
    make_case,
    db_session,
    state,
    postal_code,
    phone,
    expected,
    absent,
):
    login(make_user("collector"))
    case = make_case(make_client(), state=state, postal_code=postal_code, phone=phone)
    text = sent_text(client, db_session, case)
    assert expected in text and absent not in text
    if state == "MA":
        assert "NOT BE MADE TO YOU AT YOUR PLACE OF EMPLOYMENT" in text
    else:
        assert "1-877-FTC-HELP" in text


def test_a_spanish_speaking_massachusetts_debtor_gets_the_state_notice_in_both(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), state="MA", postal_code="02108", phone="+16175550100")
    case.debtor.language = "es"
    english, spanish = sent_text(client, db_session, case).split("Referencia:", 1)
    assert "NOTICE OF IMPORTANT RIGHTS" in english
    assert "AVISO DE DERECHOS IMPORTANTES" in spanish


def test_other_states_get_no_state_notice(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    text = sent_text(client, db_session, make_case(make_client(), state="NY"))
    assert "California" not in text and "IMPORTANT RIGHTS" not in text


def test_each_state_notice_is_data_with_its_text_and_source():
    files = sorted(STATE_NOTICES.glob("*.json"))
    assert [f.stem for f in files] == ["CA", "MA"]
    for path in files:
        notice = json.loads(path.read_text(encoding="utf-8"))
        assert notice["state"] == path.stem
        assert notice["title"]["en"] and notice["text"]["en"] and notice["url"].startswith("https")
        assert notice["source"]
    assert "209 CMR 18.16" in state_notice("MA")["source"]
    assert "1812.700" in state_notice("CA")["source"]
    assert (
        state_notice("NY") is None and state_notice("../etc") is None and state_notice(None) is None
    )


def test_dates_are_written_out_in_both_languages():
    assert written_date(dt.date(2027, 1, 2), "en") == "January 2, 2027"
    assert written_date(dt.date(2027, 1, 2), "es") == "2 de enero de 2027"


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
