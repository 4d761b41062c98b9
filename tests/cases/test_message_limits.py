"""Which emails and texts count toward the contact limits: a queued one does while it waits (two
queued together cannot break a weekly limit); a failed or held one never does."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases.contact_log import ContactRefused, contact_window
from cases.messages import OutboundMessage, send_case_email, send_case_text
from tests.conftest import TEST_ACTOR, drain_jobs
from tests.correspondence.test_honest_delivery import FlakySms, answer, sweep

NY = ZoneInfo("America/New_York")
MA_PHONE = "+16175550100"
WA_EMAIL = "sam@example.com"


def on(day: int, hour: int = 14, minute: int = 0):
    """A weekday afternoon of the week of Nov 23, 2026 (New York time)."""
    return time_machine.travel(dt.datetime(2026, 11, day, hour, minute, tzinfo=NY), tick=False)


@pytest.fixture
def provider(app, monkeypatch):
    """A text provider that answers what the test tells it (FlakySms)."""
    fake = FlakySms()
    monkeypatch.setitem(app.config, "SMS_API_URL", fake.url)
    monkeypatch.setitem(app.config, "SMS_API_KEY", "test-sms-key")
    yield fake
    fake.stop()


@pytest.fixture
def massachusetts(make_client, make_case):
    """A debtor in Boston who agreed to texts: 2 calls or texts a week (940 CMR 7.04(1)(f))."""
    case = make_case(
        make_client(), status="active", state="MA", postal_code="02108", phone=MA_PHONE
    )
    case.debtor.phones[0].text_consent = True
    return case


@pytest.fixture
def washington(make_client, make_case):
    """A debtor in Seattle: 3 communications a week (RCW 19.16.250), emails included."""
    return make_case(
        make_client(),
        status="active",
        state="WA",
        postal_code="98101",
        phone="+12065550100",
        email=WA_EMAIL,
        last_name="Smith",
    )


def text(db_session, case, app) -> OutboundMessage:
    message = send_case_text(
        db_session,
        case,
        to=MA_PHONE,
        body="A debt collector. Reply STOP to opt out.",
        actor=TEST_ACTOR,
    )
    db_session.commit()  # the delivery job runs (in-process) or is queued (RQ) at the commit
    drain_jobs(app)
    return message


def email(db_session, case, app) -> OutboundMessage:
    message = send_case_email(
        db_session, case, to=WA_EMAIL, subject="Your account", body="Hello.", actor=TEST_ACTOR
    )
    db_session.commit()
    drain_jobs(app)
    return message


def statuses(db_session) -> list[str]:
    db_session.expire_all()
    return db_session.scalars(sa.select(OutboundMessage.status).order_by(OutboundMessage.id)).all()


def test_failed_texts_count_toward_neither_the_massachusetts_limit_nor_the_calls(
    app, db_session, massachusetts
):
    # No text provider is configured: each text fails.
    for day in (23, 24):
        with on(day):
            text(db_session, massachusetts, app)
    assert statuses(db_session) == ["failed", "failed"]
    with on(25):
        assert contact_window(db_session, massachusetts, "call").allowed
        text(db_session, massachusetts, app)  # not refused: nothing was sent this week


def test_failed_emails_do_not_count_toward_the_washington_limit(app, db_session, washington):
    # No mail server is configured: each email fails.
    for day in (23, 24, 25):
        with on(day):
            email(db_session, washington, app)
    assert statuses(db_session) == ["failed"] * 3
    with on(26):
        assert contact_window(db_session, washington, "email").allowed
        assert contact_window(db_session, washington, "call").allowed
        email(db_session, washington, app)


def test_queued_texts_count_while_they_wait_and_stop_counting_once_they_fail(
    app, cli, db_session, massachusetts, provider
):
    provider.statuses[:] = [503, 503]  # it cannot take them now: both wait for another try
    for day in (23, 24):
        with on(day):
            text(db_session, massachusetts, app)
    assert statuses(db_session) == ["queued", "queued"]
    with on(25):
        with pytest.raises(ContactRefused) as refused:
            send_case_text(
                db_session, massachusetts, to=MA_PHONE, body="Reply STOP", actor=TEST_ACTOR
            )
        assert [v.rule for v in refused.value.violations] == ["massachusetts_limit"]
        assert not contact_window(db_session, massachusetts, "call").allowed

        provider.statuses[:] = [400, 400]  # tried again, it refuses them for good
        sweep(app, cli)
        assert statuses(db_session) == ["failed", "failed"]
        assert contact_window(db_session, massachusetts, "call").allowed
        text(db_session, massachusetts, app)
    assert statuses(db_session) == ["failed", "failed", "sent"]


def test_queued_emails_count_while_they_wait_and_stop_counting_once_they_fail(
    app, cli, db_session, washington, smtp_server
):
    smtp_server.handle_RCPT = answer("451 4.3.2 Try again later")
    for day in (23, 24, 25):
        with on(day):
            email(db_session, washington, app)
    assert statuses(db_session) == ["queued"] * 3
    with on(26):
        with pytest.raises(ContactRefused) as refused:
            send_case_email(
                db_session, washington, to=WA_EMAIL, subject="S", body="B", actor=TEST_ACTOR
            )
        assert [v.rule for v in refused.value.violations] == ["washington_limit"]

        smtp_server.handle_RCPT = answer("550 5.1.1 No such user here")
        sweep(app, cli)
        assert statuses(db_session) == ["failed"] * 3
        del smtp_server.handle_RCPT
        email(db_session, washington, app)
    assert statuses(db_session) == ["failed", "failed", "failed", "sent"]
    assert len(smtp_server.messages) == 1
