"""Texts from the case screen: only to a phone that may receive them, only when the rules allow."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases.contacts import Contact
from cases.messages import OutboundMessage
from tests.conftest import csrf_from, drain_jobs

NY = ZoneInfo("America/New_York")
MONDAY_11 = dt.datetime(2026, 11, 23, 11, 0, tzinfo=NY)
PHONE = "+12125550100"


@pytest.fixture
def texting(make_client, make_case):
    """An active case whose debtor agreed to texts at their one phone."""
    case = make_case(make_client(), status="active", principal=45_000)
    case.debtor.phones[0].text_consent = True
    return case


def send(client, case, to=PHONE, template="text_payment_reminder"):
    page = client.get(f"/agency/cases/{case.reference}")
    return client.post(
        f"/agency/cases/{case.reference}/texts",
        data={"text-to": to, "text-template": template, "csrf_token": csrf_from(page)},
    )


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def assert_nothing_sent(app, db_session, sms_server):
    drain_jobs(app)
    assert sms_server.messages == []
    assert count(db_session, OutboundMessage) == 0
    assert count(db_session, Contact) == 0


def test_a_text_reaches_the_provider_and_is_on_the_timeline(
    app, client, login, make_user, db_session, texting, sms_server
):
    login(make_user("collector"))
    with time_machine.travel(MONDAY_11, tick=False):
        page = client.get(f"/agency/cases/{texting.reference}").get_data(as_text=True)
        assert "Send a text" in page
        response = send(client, texting)
        assert response.status_code == 302
        drain_jobs(app)
        page = client.get(f"/agency/cases/{texting.reference}").get_data(as_text=True)
    assert f"Text queued to {PHONE}." in page
    assert f"outbound text</strong> ({PHONE})" in page
    [sms] = sms_server.messages
    assert sms["to"] == PHONE
    assert sms["authorization"] == "Bearer test-sms-key"
    assert "a debt collector" in sms["body"]
    assert texting.reference in sms["body"]
    assert "$450.00" in sms["body"]
    assert sms["body"].endswith("Reply STOP to opt out.")
    message = db_session.scalar(sa.select(OutboundMessage))
    db_session.refresh(message)
    assert (message.channel, message.status, message.provider_id) == ("text", "sent", "sms-1")
    contact = db_session.get(Contact, message.contact_id)
    assert (contact.channel, contact.direction, contact.target, contact.body) == (
        "text",
        "outbound",
        PHONE,
        sms["body"],
    )
    assert contact.violations == []


def test_a_spanish_speaking_debtor_gets_the_options_text_in_spanish(
    app, client, login, make_user, texting, sms_server
):
    login(make_user("collector"))
    texting.debtor.language = "es"
    with time_machine.travel(MONDAY_11, tick=False):
        assert send(client, texting, template="text_payment_options").status_code == 302
    drain_jobs(app)
    [sms] = sms_server.messages
    assert "un cobrador de deudas" in sms["body"]
    assert sms["body"].endswith("Responda STOP para no recibir más mensajes.")


def _late_evening(case):
    return dt.datetime(2026, 11, 23, 21, 15, tzinfo=NY)


def _inconvenient(case):
    case.debtor.inconvenient_times = [{"days": [0], "start": "10:00", "end": "12:00"}]
    return MONDAY_11


def _cease(case):
    case.debtor.cease_requested_at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    return MONDAY_11


def _attorney(case):
    case.debtor.attorney_since = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    case.debtor.attorney_name = "Sam Lawyer"
    return MONDAY_11


def _dispute_hold(case):
    case.status = "disputed"
    return MONDAY_11


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (_late_evening, "21:00"),
        (_inconvenient, "inconvenient"),
        (_cease, "cease"),
        (_attorney, "attorney"),
        (_dispute_hold, "disputed"),
    ],
    ids=["time window", "inconvenient time", "cease", "attorney", "dispute hold"],
)
def test_a_text_a_rule_forbids_is_refused_and_nothing_is_sent(
    app, client, login, make_user, db_session, texting, sms_server, arrange, reason
):
    login(make_user("collector"))
    now = arrange(texting)
    db_session.flush()
    with time_machine.travel(now, tick=False):
        response = send(client, texting)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Not sent:" in text
    assert reason in text
    assert_nothing_sent(app, db_session, sms_server)


def test_massachusetts_allows_two_texts_in_seven_days(
    app, client, login, make_user, make_client, make_case, db_session, sms_server
):
    login(make_user("collector"))
    case = make_case(
        make_client(), status="active", state="MA", postal_code="02108", phone="+16175550100"
    )
    case.debtor.phones[0].text_consent = True
    for day in (23, 24):
        with time_machine.travel(dt.datetime(2026, 11, day, 11, 0, tzinfo=NY), tick=False):
            assert send(client, case, to="+16175550100").status_code == 302
    with time_machine.travel(dt.datetime(2026, 11, 25, 11, 0, tzinfo=NY), tick=False):
        third = send(client, case, to="+16175550100")
    assert third.status_code == 422
    assert "Massachusetts" in third.get_data(as_text=True)
    drain_jobs(app)
    assert len(sms_server.messages) == 2
    assert count(db_session, OutboundMessage) == count(db_session, Contact) == 2


def test_no_text_after_a_text_opt_out_or_without_consent(
    app, client, login, make_user, db_session, texting, sms_server
):
    login(make_user("collector"))
    with time_machine.travel(MONDAY_11, tick=False):
        opt_out = client.post(
            f"/agency/cases/{texting.reference}/opt-out",
            data={
                "optout-channel": "text",
                "csrf_token": csrf_from(client.get(f"/agency/cases/{texting.reference}")),
            },
        )
        assert opt_out.status_code == 302
        page = client.get(f"/agency/cases/{texting.reference}").get_data(as_text=True)
        assert "Send a text" not in page
        refused = send(client, texting)
        assert refused.status_code == 422
        assert "opted out of texts" in refused.get_data(as_text=True)

        phone = texting.debtor.phones[0]
        phone.texts_opted_out_at, phone.text_consent = None, False
        db_session.flush()
        refused = send(client, texting)
        assert refused.status_code == 422
        assert "has not consented to texts" in refused.get_data(as_text=True)
    assert_nothing_sent(app, db_session, sms_server)


def test_no_phone_or_another_debtors_phone_changes_nothing(
    app, client, login, make_user, make_client, make_case, db_session, texting, sms_server
):
    other = make_case(make_client(code="OTHER"), status="active", phone="+13125550199")
    other.debtor.phones[0].text_consent = True
    login(make_user("collector"))
    with time_machine.travel(MONDAY_11, tick=False):
        empty = send(client, texting, to="")
        assert empty.status_code == 422
        assert "To: This field is required." in empty.get_data(as_text=True)
        foreign = send(client, texting, to="+13125550199")
        assert foreign.status_code == 422
        assert "only to a phone number on file for this debtor" in foreign.get_data(as_text=True)
        unknown = send(client, texting, template="free_text")
        assert unknown.status_code == 422
    assert_nothing_sent(app, db_session, sms_server)


def test_texts_need_a_staff_role_and_the_csrf_token(
    app, client, login, make_user, make_client, db_session, texting, sms_server
):
    with time_machine.travel(MONDAY_11, tick=False):
        login(make_user("collector"))
        no_token = client.post(
            f"/agency/cases/{texting.reference}/texts",
            data={"text-to": PHONE, "text-template": "text_payment_reminder"},
        )
        assert no_token.status_code == 400
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
        login(make_user("client", client=texting.client))
        assert send_without_page(client, texting).status_code == 403
    assert_nothing_sent(app, db_session, sms_server)


def send_without_page(client, case):
    """A POST from someone who cannot open the case screen (a token from their own page)."""
    token = csrf_from(client.get("/client/"))
    return client.post(
        f"/agency/cases/{case.reference}/texts",
        data={"text-to": PHONE, "text-template": "text_payment_reminder", "csrf_token": token},
    )
