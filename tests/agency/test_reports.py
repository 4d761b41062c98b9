"""The admin's reports against hand-computed figures: the page (SVG charts, no JavaScript)
and each CSV export."""

import csv
import datetime as dt
import io

import pytest

from cases import audit
from cases.contacts import ComplianceAlert, Contact
from cases.disputes import Dispute
from cases.plans import PromiseToPay
from payments.posting import post_payment, reverse_payment

ACTOR = audit.Actor(None, "test")
AT = dt.datetime(2026, 11, 10, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def book(db_session, make_client, make_case, make_user):
    acme, beta = make_client("ACME", "Acme Plumbing"), make_client("BETA", "Beta Supply")
    collector = make_user("collector", email="sam@recourse.test")
    # Referred before its October payment: 120 days past due then, 173 days on 23 November.
    young = make_case(
        acme,
        principal=100_000,
        status="active",
        days_past_due=120,
        referred_on=dt.date(2026, 10, 1),
    )
    old = make_case(acme, principal=50_000, status="active", days_past_due=400)  # 421 days
    make_case(beta, principal=200_000, status="active", days_past_due=200)  # 221 days
    young.assigned_to_id = collector.id
    paid = post_payment(
        db_session,
        young,
        10_000,
        external_id="a",
        received_at=dt.date(2026, 10, 5),
        method="check",
        actor=ACTOR,
    )
    post_payment(
        db_session,
        old,
        5_000,
        external_id="d",
        received_at=dt.date(2026, 11, 2),
        method="cash",
        actor=ACTOR,
        direct=True,
    )
    reverse_payment(
        db_session,
        paid,
        amount_cents=2_000,
        external_id="r",
        received_at=dt.date(2026, 11, 10),
        reason="partial refund",
        actor=ACTOR,
    )
    contact = Contact(
        case_id=young.id,
        channel="call",
        direction="outbound",
        outcome="conversation",
        occurred_at=AT,
        user_id=collector.id,
    )
    db_session.add(contact)
    db_session.flush()
    db_session.add_all(
        [
            Contact(
                case_id=young.id,
                channel="call",
                direction="outbound",
                outcome="no_answer",
                occurred_at=AT,
                user_id=collector.id,
            ),
            PromiseToPay(
                case_id=young.id,
                amount_cents=100,
                due_on=dt.date(2026, 11, 1),
                status="kept",
                recorded_by_id=collector.id,
            ),
            PromiseToPay(
                case_id=young.id,
                amount_cents=100,
                due_on=dt.date(2026, 11, 5),
                status="broken",
                recorded_by_id=collector.id,
            ),
            ComplianceAlert(case_id=young.id, contact_id=contact.id, created_at=AT),
            Dispute(
                case_id=old.id,
                received_at=AT,
                channel="portal",
                reason="not mine",
                within_validation_period=False,
                status="verified",
                resolved_at=AT,
            ),
            Dispute(
                case_id=young.id,
                received_at=AT,
                channel="letter",
                reason="wrong amount",
                within_validation_period=False,
            ),
        ]
    )
    db_session.flush()


def download(client, name):
    response = client.get(f"/agency/reports/{name}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return {row[0]: row for row in csv.reader(io.StringIO(response.text))}


def test_the_reports_page_and_each_csv(client, login, make_user, book):
    login(make_user("admin"))
    page = client.get("/agency/reports").get_data(as_text=True)
    assert page.count("<svg") == 6 and "<script" not in page
    assert "Open now: 1 compliance alert(s), 1 dispute(s)" in page

    months = download(client, "collections")
    assert months["2026-10"] == ["2026-10", "100.00", "0.00", "25.00"]
    # November: a 20.00 reversal (25%: 5.00 back) and 50.00 paid directly (40%: 20.00).
    assert months["2026-11"] == ["2026-11", "(20.00)", "50.00", "15.00"]
    assert months["2025-12"] == ["2025-12", "0.00", "0.00", "0.00"] and len(months) == 13

    rates = download(client, "liquidation")
    assert rates["ACME"] == ["ACME", "Acme Plumbing", "1500.00", "130.00", "8.67%"]
    assert rates["BETA"] == ["BETA", "Beta Supply", "2000.00", "0.00", "0.00%"]

    ages = download(client, "aging")
    # 1000.00 - 100.00 + 20.00 = 920.00 (173 days); 500.00 - 50.00 = 450.00 (421 days).
    assert ages["90–180"] == ["90–180", "1", "920.00"]
    assert ages["181–365"] == ["181–365", "1", "2000.00"]
    assert ages["1–2 years"] == ["1–2 years", "1", "450.00"]

    collectors = download(client, "collectors")
    assert collectors["sam@recourse.test"] == ["sam@recourse.test", "2", "1", "2", "80.00"]

    alerts = download(client, "alerts")
    assert alerts["2026-11"] == ["2026-11", "1", "0"]
    disputes = download(client, "disputes")
    assert disputes["2026-11"] == ["2026-11", "2", "1"]


def test_reports_are_for_admins(client, login, make_user):
    assert client.get("/agency/reports").status_code == 302
    login(make_user("supervisor"))
    assert client.get("/agency/reports").status_code == 403
    assert client.get("/agency/reports/aging.csv").status_code == 403


def test_unknown_report(client, login, make_user):
    login(make_user("admin"))
    assert client.get("/agency/reports/nope.csv").status_code == 404
