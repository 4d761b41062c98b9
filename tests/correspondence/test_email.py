"""Emails go out over SMTP with the disclosure and an opt-out, and only when allowed."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine

from cases.contacts import Contact
from cases.messages import OutboundMessage
from tests.conftest import csrf_from, drain_jobs

NY = ZoneInfo("America/New_York")


def send(client, case, to="maria@example.com", template="payment_reminder"):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/emails",
        data={"email-to": to, "email-template": template, "csrf_token": csrf_from(page)},
    )


def test_an_email_is_delivered_with_disclosure_and_opt_out(
    app, client, login, make_user, make_client, make_case, db_session, smtp_server
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=45_000)
    with time_machine.travel(dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY), tick=False):
        assert send(client, case).status_code == 302
    drain_jobs(app)
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["To"] == "maria@example.com"
    assert case.reference in mail["Subject"]
    text = mail.get_content()
    assert "This is a communication from a debt collector." in text
    assert "$450.00" in text
    assert "To stop receiving emails from us" in text
    message = db_session.scalar(sa.select(OutboundMessage))
    db_session.refresh(message)
    assert message.status == "sent"
    contact = db_session.get(Contact, message.contact_id)
    assert (contact.channel, contact.direction, contact.target) == (
        "email",
        "outbound",
        "maria@example.com",
    )


def test_a_spanish_speaking_debtor_gets_the_email_in_spanish(
    app, client, login, make_user, make_client, make_case, smtp_server
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=45_000)
    case.debtor.language = "es"
    with time_machine.travel(dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY), tick=False):
        assert send(client, case, template="payment_options").status_code == 302
        # The collector's own page stays in English.
        assert "Payment options" in client.get(f"/agency/cases/{case.reference}").get_data(
            as_text=True
        )
    drain_jobs(app)
    [mail] = smtp_server.messages
    assert mail["Subject"] == f"Opciones de pago para su cuenta {case.reference}"
    text = mail.get_content()
    assert "Esta es una comunicación de un cobrador de deudas." in text
    assert "Para dejar de recibir nuestros correos" in text


def test_an_email_a_rule_forbids_is_not_sent(
    app, client, login, make_user, make_client, make_case, db_session, smtp_server
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    with time_machine.travel(dt.datetime(2026, 11, 23, 21, 15, tzinfo=NY), tick=False):
        response = send(client, case)
    assert response.status_code == 422
    assert "Not sent:" in response.get_data(as_text=True)
    drain_jobs(app)
    assert smtp_server.messages == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_only_addresses_on_file_that_did_not_opt_out(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")
    with time_machine.travel(dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY), tick=False):
        response = send(client, case, to="someone@else.example")
        assert response.status_code == 422
        case.debtor.emails[0].opted_out_at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "Send an email" not in page
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0
