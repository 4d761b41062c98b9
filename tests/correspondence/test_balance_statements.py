"""Monthly statements of balance: asked for in the portal or on the case screen, sent by the
reminders job once a month per case, inside the contact rules, in the debtor's language."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.contacts import Contact
from cases.plans import Installment, PaymentPlan
from cases.reminders import SentReminder
from payments.posting import post_payment
from tests.agency.test_casework import act
from tests.conftest import TEST_ACTOR, csrf_from
from tests.correspondence.test_reminders import run

NY = ZoneInfo("America/New_York")


def at(year: int, month: int, day: int, hour: int):
    return time_machine.travel(dt.datetime(year, month, day, hour, tzinfo=NY), tick=False)


@pytest.fixture
def asked(db_session, make_client, make_case):
    """An active case owing $450.00 whose debtor asked for monthly statements."""
    case = make_case(make_client(), status="active", principal=45_000)
    case.debtor.monthly_statements = True
    db_session.flush()
    return case


def pay(db_session, case, cents, external_id, on: dt.date, **kwargs):
    with at(on.year, on.month, on.day, 12):
        post_payment(
            db_session,
            case,
            cents,
            external_id=external_id,
            received_at=on,
            method="check",
            actor=TEST_ACTOR,
            **kwargs,
        )
        db_session.flush()


def sent_keys(db_session) -> list[str]:
    return sorted(db_session.scalars(sa.select(SentReminder.key)))


def test_a_statement_goes_out_once_a_month_by_email_with_the_payments_since_the_last(
    app,
    cli,
    db_session,
    asked,
    make_client,
    make_case,
    smtp_server,
    sms_server,
):
    case = asked
    not_asked = make_case(make_client("BLUE", "Bluesky"), status="active", email="jo@example.com")
    pay(db_session, case, 10_000, "chk-nov", dt.date(2026, 11, 25))

    with at(2026, 12, 1, 10):
        output = run(app, cli)

    assert "1 reminder(s) sent" in output and "1 monthly statement(s) of balance" in output
    [mail] = smtp_server.messages
    assert mail["To"] == "maria@example.com"
    assert mail["Subject"] == f"Your statement of balance for 2026-12, account {case.reference}"
    text = " ".join(mail.get_content().split())
    assert "This is a communication from a debt collector." in text
    assert f"your account with Acme Plumbing (account {case.account_number}" in text
    assert "Your statement of balance for 2026-12, as of 2026-12-01:" in text
    assert "Balance: $350.00" in text
    assert "Payments since 2026-11-01: 2026-11-25 Payment $100.00" in text
    assert "Total paid since 2026-11-01: $100.00" in text
    assert "How to pay: online at http://127.0.0.1:5000/portal/login (by card)" in text
    assert f"with your reference {case.reference}" in text
    assert "This is an attempt to collect a debt" in text
    assert "To stop these statements, change your preferences at" in text
    assert "To stop receiving emails from us, reply with the word STOP" in text
    assert sms_server.messages == []  # a statement goes by one channel: email first
    [contact] = db_session.scalars(sa.select(Contact)).all()
    assert (contact.case_id, contact.channel, contact.target) == (
        case.id,
        "email",
        "maria@example.com",
    )
    assert sent_keys(db_session) == [f"balance_statement:{case.id}:2026-12:email"]
    assert not_asked.id not in {c.case_id for c in db_session.scalars(sa.select(Contact))}

    # The job runs hourly, every day: the month's statement is never sent again.
    with at(2026, 12, 1, 11):
        assert "0 reminder(s) sent" in run(app, cli)
    with at(2026, 12, 20, 10):
        run(app, cli)
    assert len(smtp_server.messages) == 1

    # Next month: only what was paid since the last statement.
    pay(db_session, case, 5_000, "chk-dec", dt.date(2026, 12, 10))
    pay(db_session, case, 2_500, "direct-dec", dt.date(2026, 12, 12), direct=True)
    with at(2027, 1, 4, 10):
        run(app, cli)
    assert len(smtp_server.messages) == 2
    text = " ".join(smtp_server.messages[1].get_content().split())
    assert "Balance: $275.00" in text
    assert "Payments since 2026-12-01: 2026-12-10 Payment $50.00" in text
    assert "2026-12-12 Paid to Acme Plumbing $25.00" in text
    assert "Total paid since 2026-12-01: $75.00" in text
    assert "2026-11-25" not in text
    assert sent_keys(db_session) == [
        f"balance_statement:{case.id}:2026-12:email",
        f"balance_statement:{case.id}:2027-01:email",
    ]


def test_held_back_outside_the_debtors_hours_and_sent_in_them(app, cli, asked, smtp_server):
    with at(2026, 12, 1, 6):
        output = run(app, cli)
    assert "0 reminder(s) sent, 1 held back" in output
    assert "allowed 08:00–21:00" in output
    with at(2026, 12, 1, 9):
        run(app, cli)
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("why", ["cease", "attorney", "dispute_hold"])
def test_nothing_is_sent_after_a_cease_to_a_represented_debtor_or_during_a_dispute(
    app,
    cli,
    db_session,
    asked,
    smtp_server,
    sms_server,
    why,
):
    case = asked
    case.debtor.phones[0].text_consent = True
    if why == "cease":
        case.debtor.cease_requested_at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    elif why == "attorney":
        case.debtor.attorney_since = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    else:
        case.status = "disputed"
    with at(2026, 12, 1, 10):
        output = run(app, cli)
    assert "0 reminder(s) sent, 1 held back" in output
    assert smtp_server.messages == [] and sms_server.messages == []
    assert sent_keys(db_session) == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_debtor_we_may_only_text_gets_it_by_text_and_one_who_opted_out_of_both_gets_none(
    app,
    cli,
    db_session,
    asked,
    smtp_server,
    sms_server,
):
    case = asked
    case.debtor.emails[0].opted_out_at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    case.debtor.phones[0].text_consent = True
    with at(2026, 12, 1, 10):
        run(app, cli)
    assert smtp_server.messages == []
    [sms] = sms_server.messages
    assert sms["to"] == "+12125550100"
    assert sms["body"] == (
        f"Recourse Collections, a debt collector: your balance on account {case.reference} is "
        "$450.00 as of 2026-12-01; paid since 2026-11-01: $0.00. Pay or see details at "
        "http://127.0.0.1:5000/portal/login Reply STOP to opt out."
    )
    assert sent_keys(db_session) == [f"balance_statement:{case.id}:2026-12:text"]

    case.debtor.phones[0].texts_opted_out_at = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with at(2027, 1, 4, 10):
        run(app, cli)
    assert len(sms_server.messages) == 1 and smtp_server.messages == []


def test_in_spanish_with_the_plans_next_payment(app, cli, db_session, asked, smtp_server):
    case = asked
    case.debtor.language = "es"
    case.status = "plan"
    plan = PaymentPlan(case_id=case.id, total_cents=45_000, frequency="monthly")
    plan.installments = [
        Installment(seq=1, due_on=dt.date(2026, 11, 30), amount_cents=15_000, status="paid"),
        Installment(seq=2, due_on=dt.date(2026, 12, 30), amount_cents=15_000),
    ]
    db_session.add(plan)
    db_session.flush()
    with at(2026, 12, 1, 10):
        run(app, cli)
    [mail] = smtp_server.messages
    assert mail["Subject"] == f"Su estado de cuenta de 2026-12, cuenta {case.reference}"
    text = " ".join(mail.get_content().split())
    assert "Esta es una comunicación de un cobrador de deudas." in text
    assert "Saldo: $450.00" in text
    assert "No hay pagos desde el 2026-11-01." in text
    assert "Próximo pago de su plan: $150.00 el 2026-12-30." in text
    assert "Es un intento de cobrar una deuda" in text
    assert "Para dejar de recibirlo, cambie sus preferencias" in text


def test_none_for_a_new_case_a_closed_one_or_nothing_owed(
    app, cli, db_session, make_client, make_case, smtp_server
):
    new = make_case(make_client(), status="new")
    paid_up = make_case(make_client("BLUE", "Bluesky"), status="active", principal=10_000)
    closed = make_case(make_client("CEDAR", "Cedar"), status="closed")
    for case in (new, paid_up, closed):
        case.debtor.monthly_statements = True
    pay(db_session, paid_up, 10_000, "chk-all", dt.date(2026, 11, 25))
    with at(2026, 12, 1, 10):
        assert "0 reminder(s) sent, 0 held back" in run(app, cli)
    assert smtp_server.messages == []


def test_the_debtor_asks_for_them_in_the_portal_and_stops_them(
    client, signed_in, db_session, make_client, make_case
):
    case = make_case(make_client(), status="active")
    signed_in(case)
    page = client.get("/portal/preferences").get_data(as_text=True)
    assert "Send me a statement of my balance every month" in page

    def save(**fields):
        data = {"csrf_token": csrf_from(client.get("/portal/preferences")), "language": "en"}
        return client.post("/portal/preferences", data={**data, **fields})

    assert save(monthly_statements="y").status_code == 302
    assert case.debtor.monthly_statements is True
    assert 'checked id="monthly_statements"' in client.get("/portal/preferences").get_data(
        as_text=True
    )
    assert save().status_code == 302
    assert case.debtor.monthly_statements is False
    changes = db_session.scalars(
        sa.select(AuditEvent.detail).where(AuditEvent.action == "debtor.monthly_statements_set")
    ).all()
    assert [c["wanted"] for c in changes] == [True, False]

    save(language="es", monthly_statements="y")
    page = client.get("/portal/preferences").get_data(as_text=True)
    assert "Envíenme un estado de cuenta con mi saldo cada mes" in page


def test_a_collector_sets_it_on_the_case_screen(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active")

    response = act(client, case, "monthly-statements", {"stm-wanted": "y"})

    assert response.status_code == 302
    assert case.debtor.monthly_statements is True
    event = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "debtor.monthly_statements_set")
    )
    assert (event.case_id, event.detail["wanted"]) == (case.id, True)
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert 'checked id="stm-wanted"' in page

    act(client, case, "monthly-statements", {})
    assert case.debtor.monthly_statements is False


def test_a_client_user_cannot_set_it(client, login, make_user, make_client, make_case):
    acme = make_client()
    login(make_user("client", client=acme))
    case = make_case(acme, status="active")
    token = csrf_from(client.get("/client/referrals"))
    response = client.post(
        f"/agency/cases/{case.reference}/monthly-statements",
        data={"stm-wanted": "y", "csrf_token": token},
    )
    assert response.status_code == 403
    assert case.debtor.monthly_statements is False


def test_asking_again_the_same_month_sends_no_second_statement(
    app, cli, db_session, asked, smtp_server
):
    with at(2026, 12, 1, 10):
        assert "1 monthly statement(s) of balance" in run(app, cli)
    db_session.refresh(asked)
    assert asked.statement_month == "2026-12"  # out of the hourly run's index until January
    asked.debtor.monthly_statements = False
    db_session.flush()
    asked.debtor.monthly_statements = True
    db_session.flush()
    with at(2026, 12, 2, 10):
        assert "0 reminder(s) sent" in run(app, cli)
    with at(2027, 1, 4, 10):
        assert "1 monthly statement(s) of balance" in run(app, cli)
    assert len(smtp_server.messages) == 2
    assert sent_keys(db_session) == [
        f"balance_statement:{asked.id}:2026-12:email",
        f"balance_statement:{asked.id}:2027-01:email",
    ]
