"""Statements in the client area (own only) and for admins: downloads, remittances with CSRF
and audit, bad input changing nothing, and the trust view's late flags."""

import datetime as dt

import sqlalchemy as sa
import time_machine

from cases import audit
from cases.audit import AuditEvent
from correspondence.statement_mail import issue_statement
from payments.posting import post_payment
from payments.remittance import Remittance
from payments.statements import Month
from payments.trust import trust_lines
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
OCT = Month(2026, 10)
REFERRED = dt.date(2026, 10, 1)  # before the October payments: money moves from referral on


def issued(db_session, client, case, cents, *, direct=False, ref=None):
    post_payment(
        db_session,
        case,
        cents,
        external_id=ref or f"p-{client.code}-{cents}",
        received_at=dt.date(2026, 10, 15),
        method="check",
        actor=ACTOR,
        direct=direct,
    )
    return issue_statement(db_session, client, OCT, actor=ACTOR).statement


def october_case(make_case, client):
    return make_case(client, principal=50_000, status="active", referred_on=REFERRED)


def two_clients(db_session, make_client, make_case):
    acme, beta = make_client("ACME"), make_client("BETA", "Beta Supply")
    mine = issued(db_session, acme, october_case(make_case, acme), 10_000)
    theirs = issued(db_session, beta, october_case(make_case, beta), 20_000)
    return acme, beta, mine, theirs


def test_a_client_lists_and_downloads_only_its_own_statements(
    client, login, make_user, db_session, make_client, make_case
):
    acme, beta, mine, theirs = two_clients(db_session, make_client, make_case)
    login(make_user("client", client=acme))
    page = client.get("/client/statements").get_data(as_text=True)
    assert "ST-ACME-2026-10" in page and "ST-BETA-2026-10" not in page
    assert "$75.00" in page  # 100.00 collected less 25.00 fees

    pdf = client.get("/client/statements/ST-ACME-2026-10.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.mimetype == "application/pdf" and pdf.data == mine.pdf
    csv = client.get("/client/statements/st-acme-2026-10.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]

    for path in (
        "/client/statements/ST-BETA-2026-10.pdf",
        "/client/statements/ST-BETA-2026-10.csv",
        f"/client/statements/{theirs.id}.pdf",
        "/agency/statements/ST-BETA-2026-10.pdf",
        "/agency/statements/ST-BETA-2026-10",
        "/agency/statements",
    ):
        response = client.get(path)
        assert response.status_code in (403, 404), path
        assert theirs.pdf not in response.data


def test_statement_pages_are_for_admins(
    client, login, make_user, db_session, make_client, make_case
):
    two_clients(db_session, make_client, make_case)
    assert client.get("/client/statements").status_code == 302  # signed out: sign in
    assert client.get("/agency/statements").status_code == 302
    login(make_user("collector"))
    assert client.get("/agency/statements").status_code == 403
    assert client.get("/agency/statements/ST-ACME-2026-10.pdf").status_code == 403
    assert client.get("/client/statements").status_code == 403


def remit_form(client, number, **fields):
    page = client.get(f"/agency/statements/{number}")
    data = {
        "paid_on": "2026-11-20",
        "method": "ach",
        "reference": "TRACE-1",
        "amount": "75.00",
        "csrf_token": csrf_from(page),
    }
    data.update(fields)
    return client.post(f"/agency/statements/{number}/remittances", data=data)


def test_an_admin_records_a_remittance_with_audit(
    client, login, make_user, db_session, make_client, make_case
):
    two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    listing = client.get("/agency/statements?month=2026-10").get_data(as_text=True)
    assert "ST-ACME-2026-10" in listing and "ST-BETA-2026-10" in listing
    assert "ST-BETA" not in client.get("/agency/statements?client=ACME").get_data(as_text=True)

    response = remit_form(client, "ST-ACME-2026-10")
    assert response.status_code == 302, response.get_data(as_text=True)
    remittance = db_session.scalar(sa.select(Remittance))
    assert (remittance.amount_cents, remittance.method, remittance.reference) == (
        7_500,
        "ach",
        "TRACE-1",
    )
    assert remittance.paid_on == dt.date(2026, 11, 20)
    event = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "statement.remitted")
    )
    assert event.detail["amount_cents"] == 7_500 and event.actor_user_id is not None
    page = client.get("/agency/statements/ST-ACME-2026-10").get_data(as_text=True)
    assert "Settled in full" in page and "TRACE-1" in page
    lines = {line.client.code: line for line in trust_lines(db_session, dt.date(2026, 11, 23))}
    assert lines["ACME"].remitted == 7_500 and lines["ACME"].to_remit == 0
    assert lines["BETA"].to_remit == 15_000


def test_the_remit_form_needs_its_csrf_token(
    client, login, make_user, db_session, make_client, make_case
):
    two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    response = client.post(
        "/agency/statements/ST-ACME-2026-10/remittances",
        data={"paid_on": "2026-11-20", "method": "ach", "reference": "X", "amount": "75.00"},
    )
    assert response.status_code == 400
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Remittance)) == 0


def test_bad_remittance_input_gets_a_message_and_changes_nothing(
    client, login, make_user, db_session, make_client, make_case
):
    two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    bad = [
        ({"paid_on": "2026-11-31"}, "Not a valid date value"),
        ({"paid_on": "2026-12-01"}, "cannot be in the future"),
        ({"paid_on": "2026-09-30"}, "cannot be before the statement"),
        ({"amount": "75.01"}, "more than the 75.00 left to settle"),
        ({"amount": "0"}, "more than zero"),
        ({"amount": "12,34.5"}, "Enter an amount like 1234.56"),
        ({"amount": "-5"}, "Enter an amount like 1234.56"),
        ({"reference": ""}, "This field is required"),
        ({"method": "bitcoin"}, "Not a valid choice"),
    ]
    for change, message in bad:
        response = remit_form(client, "ST-ACME-2026-10", **change)
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Remittance)) == 0
    assert not db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "statement.remitted")
    )


def test_a_negative_statement_is_settled_by_the_client(
    client, login, make_user, db_session, make_client, make_case
):
    acme = make_client("ACME")
    issued(db_session, acme, make_case(acme, principal=50_000, status="active"), 8_000, direct=True)
    login(make_user("admin"))
    page = client.get("/agency/statements/ST-ACME-2026-10").get_data(as_text=True)
    assert "the client owes us" in page and "Record a payment received from the client" in page
    assert remit_form(client, "ST-ACME-2026-10", amount="20.00").status_code == 302
    assert db_session.scalar(sa.select(Remittance.amount_cents)) == -2_000
    line = next(t for t in trust_lines(db_session) if t.client.code == "ACME")
    assert line.to_remit == 0 - 2_000 - -2_000 == 0


def test_the_trust_view_flags_remittances_later_than_30_days(
    client, login, make_user, db_session, make_client, make_case
):
    acme, beta, mine, theirs = two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    # October's statements are due by 30 November.
    assert remit_form(client, mine.number).status_code == 302  # on time, 20 November
    assert not next(
        t for t in trust_lines(db_session, dt.date(2026, 11, 30)) if t.client.code == "BETA"
    ).late
    with time_machine.travel(dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)):
        page = client.get("/agency/trust").get_data(as_text=True)
        assert "OVERDUE" in page and "ST-BETA-2026-10" in page
        assert (
            remit_form(client, theirs.number, paid_on="2026-12-03", amount="150.00").status_code
            == 302
        )
        page = client.get("/agency/trust").get_data(as_text=True)
    assert "OVERDUE" not in page
    assert "LATE" in page and "settled 2026-12-03" in page
    lines = {t.client.code: t for t in trust_lines(db_session, dt.date(2026, 12, 3))}
    assert lines["ACME"].late == []
    assert [(x.number, x.settled_on) for x in lines["BETA"].late] == [
        ("ST-BETA-2026-10", dt.date(2026, 12, 3))
    ]
