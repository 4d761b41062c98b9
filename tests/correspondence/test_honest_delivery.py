"""A message is a communication only once the provider took it: `queued` until then, `failed`
or `held` (with why) otherwise, on the case screen, its timeline and the client's page. The
rules are asked again at the hand-over; transient failures are tried again after a wait,
permanent ones are not."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases import debtors as debtor_rules
from cases.audit import AuditEvent
from cases.contact_log import history
from cases.contacts import Contact
from cases.debtors import Email
from cases.jobs import OutboxJob
from cases.messages import BACKOFF, MAX_ATTEMPTS, OutboundMessage
from shell.job_runner import RQRunner
from tests.conftest import PASSWORD, TEST_ACTOR, csrf_from, drain_jobs

NY = ZoneInfo("America/New_York")
EMAIL = "maria@example.com"
PHONE = "+12125550100"
REDIS_AWAY = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def at(hour: int, minute: int = 0, second: int = 0, day: int = 23):
    moment = dt.datetime(2026, 11, day, hour, minute, second, tzinfo=NY)
    return time_machine.travel(moment, tick=False)


def ny(hour: int, minute: int = 0, day: int = 23) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=NY)


@pytest.fixture
def debtor_case(make_client, make_case):
    """An active case in New York whose debtor has an email and agreed to texts."""
    case = make_case(make_client(), status="active", principal=45_000)
    case.debtor.phones[0].text_consent = True
    return case


def send(client, case, channel: str = "email"):
    """The case screen's email or text form, as a collector posts it."""
    page = client.get(f"/agency/cases/{case.reference}")
    if channel == "email":
        data = {"email-to": EMAIL, "email-template": "payment_reminder"}
    else:
        data = {"text-to": PHONE, "text-template": "text_payment_reminder"}
    return client.post(
        f"/agency/cases/{case.reference}/{channel}s",
        data={**data, "csrf_token": csrf_from(page)},
    )


def outbox(db_session) -> list[OutboundMessage]:
    db_session.expire_all()
    return db_session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)).all()


def contacts(db_session) -> list[Contact]:
    return db_session.scalars(sa.select(Contact).order_by(Contact.id)).all()


def sweep(app, cli) -> None:
    """What cron (or RQ's cron scheduler) does every minute, and the worker after it."""
    result = cli.invoke(args=["jobs", "sweep"])
    assert result.exit_code == 0, result.output
    drain_jobs(app)


def waiting_retries(db_session, message: OutboundMessage) -> list[OutboxJob]:
    rows = db_session.scalars(sa.select(OutboxJob).where(OutboxJob.sent_at.is_(None))).all()
    return [row for row in rows if row.args == [message.id]]


def answer(reply: str):
    """An aiosmtpd RCPT hook that answers `reply` (a 4xx or 5xx refuses the recipient)."""

    async def handle_rcpt(server, session, envelope, address, rcpt_options):
        return reply

    return handle_rcpt


def client_user_page(app, make_user, case) -> str:
    """The case page of the client area, as one of the client's users sees it."""
    user = make_user("client", client=case.client)
    browser = app.test_client()
    login = browser.get("/login")
    signed = browser.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(login)}
    )
    assert signed.status_code == 302
    return browser.get(f"/client/cases/{case.reference}").get_data(as_text=True)


class FlakySms:
    """A text provider on 127.0.0.1 that answers the statuses it is given, in order, then
    takes every text (201 with an id)."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)
        self.taken: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = fake.statuses.pop(0) if fake.statuses else 201
                if status == 201:
                    fake.taken.append(text)
                    body = json.dumps({"id": f"sms-{len(fake.taken)}"}).encode()
                else:
                    body = json.dumps({"error": "no"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_sms(app, monkeypatch):
    """The app's text provider is a FlakySms; `flaky_sms(503, 400)` sets what it answers next."""
    fake = FlakySms()
    monkeypatch.setitem(app.config, "SMS_API_URL", fake.url)
    monkeypatch.setitem(app.config, "SMS_API_KEY", "test-sms-key")

    def answers(*statuses: int) -> FlakySms:
        fake.statuses[:] = statuses
        return fake

    yield answers
    fake.stop()


# --- what the staff and the client see -------------------------------------------------------


def test_a_failed_email_shows_as_failed_with_why_and_never_as_a_contact(
    app, client, login, make_user, db_session, debtor_case
):
    login(make_user("collector"))  # no MAIL_SERVER here: the mail server cannot take it
    with at(11):
        response = send(client, debtor_case)
        assert response.status_code == 302
        drain_jobs(app)
        page = client.get(response.headers["Location"]).get_data(as_text=True)

    # The flash says what is known when the button is pressed: queued, not sent.
    assert f"Email queued to {EMAIL}. It counts as sent once the mail server takes it" in page
    [message] = outbox(db_session)
    assert (message.status, message.error, message.contact_id) == (
        "failed",
        "MAIL_SERVER is not set",
        None,
    )
    assert contacts(db_session) == []
    assert debtor_case.last_contact_at is None
    # The timeline and the outbox say it failed and why; no "outbound email" contact.
    assert "outbound email</strong>" not in page
    assert f"<strong>email failed</strong> ({EMAIL})" in page
    assert "failed, not sent</span>: MAIL_SERVER is not set" in page

    client_page = client_user_page(app, make_user, debtor_case)
    assert "No contacts yet." in client_page
    assert "<td>email</td><td>failed, not sent: MAIL_SERVER is not set</td>" in client_page
    assert message.subject not in client_page  # the message's text stays internal


def test_an_email_is_queued_until_the_mail_server_takes_it_then_it_is_a_contact(
    app, client, cli, login, make_user, db_session, debtor_case, smtp_server
):
    collector = make_user("collector")
    login(collector)
    smtp_server.handle_RCPT = answer("451 4.3.2 Try again later")  # a transient refusal
    with at(11):
        assert send(client, debtor_case).status_code == 302
        drain_jobs(app)
        page = client.get(f"/agency/cases/{debtor_case.reference}").get_data(as_text=True)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.contact_id) == ("queued", 1, None)
    assert message.error == "the mail server refused the address: 451 4.3.2 Try again later"
    assert message.next_attempt_at == ny(11, 1)
    assert smtp_server.messages == [] and contacts(db_session) == []
    assert f"<strong>email queued</strong> ({EMAIL})" in page
    assert "queued, not sent yet (tried 1 time: the mail server refused" in page
    assert "next try 2026-11-23 11:01 EST" in page
    client_page = client_user_page(app, make_user, debtor_case)
    assert "<td>email</td><td>queued, not sent yet</td>" in client_page
    assert "No contacts yet." in client_page

    with at(11, 0, 30):  # not due yet
        sweep(app, cli)
    assert (outbox(db_session)[0].status, outbox(db_session)[0].attempts) == ("queued", 1)

    del smtp_server.handle_RCPT  # the server takes mail again
    with at(11, 1):
        sweep(app, cli)
        page = client.get(f"/agency/cases/{debtor_case.reference}").get_data(as_text=True)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.error) == ("sent", 2, None)
    assert message.sent_at == ny(11, 1)
    [mail] = smtp_server.messages
    assert mail["To"] == EMAIL
    [contact] = contacts(db_session)
    assert contact.id == message.contact_id
    assert (contact.channel, contact.target, contact.occurred_at, contact.user_id) == (
        "email",
        EMAIL,
        ny(11, 1),
        collector.id,
    )
    assert contact.violations == []
    assert f"outbound email</strong> ({EMAIL}): {message.subject} — sent 2026-11-23 11:01" in page
    client_page = client_user_page(app, make_user, debtor_case)
    assert "<td>email</td><td>sent 2026-11-23 11:01 EST</td>" in client_page
    assert '<tr><td>email</td><td class="num">1</td>' in client_page
    # Sent once: a later sweep hands nothing over again.
    with at(12):
        sweep(app, cli)
    assert len(smtp_server.messages) == 1


# --- retries ----------------------------------------------------------------------------------


def test_a_recipient_the_mail_server_refuses_for_good_fails_at_once_and_is_not_retried(
    app, client, cli, login, make_user, db_session, debtor_case, smtp_server
):
    login(make_user("collector"))
    smtp_server.handle_RCPT = answer("550 5.1.1 No such user here")
    with at(11):
        assert send(client, debtor_case).status_code == 302
        drain_jobs(app)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 1, None)
    assert message.error == "the mail server refused the address: 550 5.1.1 No such user here"
    assert waiting_retries(db_session, message) == []
    del smtp_server.handle_RCPT
    with at(14):
        sweep(app, cli)
    assert (outbox(db_session)[0].status, outbox(db_session)[0].attempts) == ("failed", 1)
    assert smtp_server.messages == [] and contacts(db_session) == []


def test_a_transient_failure_is_tried_again_with_growing_waits_then_given_up(
    app, client, cli, login, make_user, db_session, debtor_case, smtp_server
):
    login(make_user("collector"))
    smtp_server.handle_RCPT = answer("421 4.7.0 Too busy, come back later")
    with at(11):
        assert send(client, debtor_case).status_code == 302
        drain_jobs(app)
    waits, tried_at = [], ny(11)
    for attempt in range(1, MAX_ATTEMPTS):
        [message] = outbox(db_session)
        assert (message.status, message.attempts) == ("queued", attempt)
        assert len(waiting_retries(db_session, message)) == 1
        waits.append(message.next_attempt_at - tried_at)
        tried_at = message.next_attempt_at
        with time_machine.travel(tried_at, tick=False):
            sweep(app, cli)
    assert waits == list(BACKOFF)  # 1, 5, 30 and 120 minutes
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.next_attempt_at) == (
        "failed",
        MAX_ATTEMPTS,
        None,
    )
    assert message.error == (
        "the mail server refused the address: 421 4.7.0 Too busy, come back later "
        f"(gave up after {MAX_ATTEMPTS} attempts)"
    )
    assert waiting_retries(db_session, message) == []
    assert smtp_server.messages == [] and contacts(db_session) == []


def test_an_unreachable_mail_server_is_a_transient_failure(
    app, client, login, make_user, db_session, debtor_case, monkeypatch
):
    login(make_user("collector"))
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", 1)  # nothing listens there
    with at(11):
        assert send(client, debtor_case).status_code == 302
        drain_jobs(app)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.next_attempt_at) == ("queued", 1, ny(11, 1))
    assert message.error.startswith("the mail server could not be reached: ConnectionRefused")


def test_a_text_the_provider_could_not_take_now_is_tried_again_and_sent(
    app, client, cli, login, make_user, db_session, debtor_case, flaky_sms
):
    login(make_user("collector"))
    provider = flaky_sms(503)
    with at(11):
        assert send(client, debtor_case, "text").status_code == 302
        drain_jobs(app)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.error) == (
        "queued",
        1,
        "the SMS provider answered 503",
    )
    assert provider.taken == [] and contacts(db_session) == []
    with at(11, 1):
        sweep(app, cli)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.provider_id) == ("sent", 2, "sms-1")
    [text] = provider.taken
    assert text["to"] == PHONE
    [contact] = contacts(db_session)
    assert (contact.channel, contact.target, contact.occurred_at) == ("text", PHONE, ny(11, 1))


def test_a_text_to_a_number_the_provider_refuses_fails_and_is_not_retried(
    app, client, cli, login, make_user, db_session, debtor_case, flaky_sms
):
    login(make_user("collector"))
    provider = flaky_sms(400)  # e.g. not a mobile number
    with at(11):
        assert send(client, debtor_case, "text").status_code == 302
        drain_jobs(app)
        page = client.get(f"/agency/cases/{debtor_case.reference}").get_data(as_text=True)
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.error) == (
        "failed",
        1,
        "the SMS provider answered 400",
    )
    assert waiting_retries(db_session, message) == []
    assert f"<strong>text failed</strong> ({PHONE})" in page
    assert "outbound text</strong>" not in page
    with at(12):
        sweep(app, cli)
    assert outbox(db_session)[0].attempts == 1
    assert provider.taken == [] and contacts(db_session) == []


# --- the rules, asked again at the hand-over ----------------------------------------------------


def _cease(db_session, case):
    debtor_rules.record_cease(
        db_session, case.debtor, at=ny(11, 30), actor=TEST_ACTOR, case_id=case.id
    )
    return (11, 31), "The debtor asked in writing on 2026-11-23 that contact stop"


def _attorney(db_session, case):
    case.debtor.attorney_since = ny(11, 30)
    case.debtor.attorney_name = "Sam Lawyer"
    return (11, 31), "An attorney represents the debtor"


def _dispute_hold(db_session, case):
    case.status = "disputed"
    return (11, 31), "The debtor disputed the debt inside the validation period"


def _after_21(db_session, case):
    return (21, 1), "It is 21:01 in America/New_York; {plural} are allowed 08:00–21:00"


@pytest.mark.parametrize("channel", ["email", "text"])
@pytest.mark.parametrize(
    ("queued_at", "meanwhile"),
    [((11, 0), _cease), ((11, 0), _attorney), ((11, 0), _dispute_hold), ((20, 59), _after_21)],
    ids=["cease", "attorney", "dispute hold", "queued 20:59, handed over 21:01"],
)
def test_a_message_the_rules_forbid_by_its_hand_over_is_held_with_why_and_does_not_count(
    app,
    client,
    cli,
    login,
    make_user,
    db_session,
    debtor_case,
    smtp_server,
    sms_server,
    monkeypatch,
    channel,
    queued_at,
    meanwhile,
):
    login(make_user("collector"))
    runner = app.extensions["recourse.jobs"]
    # The job waits (Redis away, or a busy worker): it reaches the provider only later.
    monkeypatch.setitem(app.extensions, "recourse.jobs", RQRunner(app, REDIS_AWAY))
    with at(*queued_at):
        assert send(client, debtor_case, channel).status_code == 302
    monkeypatch.setitem(app.extensions, "recourse.jobs", runner)
    [message] = outbox(db_session)
    assert message.status == "queued"
    assert len(history(db_session, debtor_case.id)) == 1  # it counts while it waits

    handed_over, why = meanwhile(db_session, debtor_case)
    why = why.format(plural=f"{channel}s")
    db_session.flush()
    with at(*handed_over):
        sweep(app, cli)
        page = client.get(f"/agency/cases/{debtor_case.reference}").get_data(as_text=True)

    assert smtp_server.messages == [] and sms_server.messages == []
    [message] = outbox(db_session)
    assert (message.status, message.attempts, message.contact_id) == ("held", 0, None)
    assert why in message.error
    assert contacts(db_session) == []
    assert history(db_session, debtor_case.id) == []  # held: it does not count
    assert waiting_retries(db_session, message) == []  # and it is not tried again
    held = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "message.held"))
    assert held.entity_id == str(message.id) and held.reason == message.error
    assert f"<strong>{channel} held</strong>" in page
    assert "held, not sent</span>: " + why in page
    client_page = client_user_page(app, make_user, debtor_case)
    assert f"<td>{channel}</td><td>held, not sent: {why}" in client_page


def test_an_address_opted_out_after_queueing_is_not_used_though_another_is_open(
    app, client, cli, login, make_user, db_session, debtor_case, smtp_server, monkeypatch
):
    debtor_case.debtor.emails.append(Email(address="maria@work.example"))
    db_session.flush()
    login(make_user("collector"))
    runner = app.extensions["recourse.jobs"]
    monkeypatch.setitem(app.extensions, "recourse.jobs", RQRunner(app, REDIS_AWAY))
    with at(11):
        assert send(client, debtor_case).status_code == 302
    monkeypatch.setitem(app.extensions, "recourse.jobs", runner)
    debtor_case.debtor.emails[0].opted_out_at = ny(11, 30)  # "unsubscribe" from that address
    db_session.flush()
    with at(11, 31):
        sweep(app, cli)
    [message] = outbox(db_session)
    assert (message.status, message.error) == ("held", f"{EMAIL} opted out of email.")
    assert smtp_server.messages == [] and contacts(db_session) == []
