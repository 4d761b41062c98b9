"""The admin's reports against hand-computed figures: the page (SVG charts, no JavaScript)
and each CSV export."""

import csv
import datetime as dt
import io
import re

import pytest
import time_machine

from cases import audit
from cases.contacts import ComplianceAlert, Contact
from cases.disputes import Dispute
from cases.plans import PromiseToPay, record_promise
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
    assert page.count("<svg") == 8 and "<script" not in page
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


def test_both_series_are_drawn_with_a_legend_and_labels_are_readable(
    client, login, make_user, book
):
    login(make_user("admin"))
    page = client.get("/agency/reports").get_data(as_text=True)
    alerts = page[page.index('id="alerts"') : page.index('id="disputes"')]
    assert ">Raised</text>" in alerts and ">Resolved</text>" in alerts  # the legend
    # November: one alert raised (a bar) and none resolved; two series coloured apart.
    assert "Nov 26, Raised: 1" in alerts and "Nov 26, Resolved: 0" in alerts
    assert 'fill="#2f6f9f"' in alerts and 'fill="#b35900"' in alerts
    disputes = page[page.index('id="disputes"') :]
    assert "Nov 26, Opened: 2" in disputes and "Nov 26, Resolved: 1" in disputes
    sizes = {int(size) for size in re.findall(r'font-size="(\d+)"', page)}
    assert sizes and min(sizes) >= 12


@pytest.fixture
def promises_book(db_session, make_client, make_case, make_user):
    """Real promises recorded on 2 November, then real payments against them."""
    acme = make_client("ACME", "Acme Plumbing")
    sam = make_user("collector", email="sam@recourse.test")
    kim = make_user("collector", email="kim@recourse.test")
    cases = [make_case(acme, principal=50_000, status="active") for _ in range(4)]
    kept, late, still_open, reversed_ = cases
    for case, who in zip(cases, (sam, sam, sam, kim), strict=True):
        case.assigned_to_id = who.id
    with time_machine.travel(dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC), tick=False):
        for case, who, amount, due in (
            (kept, sam, 10_000, dt.date(2026, 11, 10)),
            (late, sam, 5_000, dt.date(2026, 11, 12)),
            (still_open, sam, 7_000, dt.date(2026, 12, 5)),
            (reversed_, kim, 3_000, dt.date(2026, 11, 15)),
        ):
            record_promise(
                db_session,
                case,
                amount_cents=amount,
                due_on=due,
                today=dt.date(2026, 11, 2),
                actor=audit.Actor.user(who),
            )

    def pay(case, amount, day, key):
        return post_payment(
            db_session,
            case,
            amount,
            external_id=key,
            received_at=day,
            method="check",
            actor=ACTOR,
        )

    pay(kept, 6_000, dt.date(2026, 11, 5), "k1")
    pay(kept, 4_000, dt.date(2026, 11, 10), "k2")  # in full on the day: kept
    pay(late, 5_000, dt.date(2026, 11, 14), "l1")  # in full two days late: broken
    pay(still_open, 1_000, dt.date(2026, 11, 20), "o1")  # part, not yet due: open
    bounced = pay(reversed_, 3_000, dt.date(2026, 11, 15), "r1")
    reverse_payment(
        db_session,
        bounced,
        amount_cents=None,
        external_id="r1-back",
        received_at=dt.date(2026, 11, 16),
        reason="bounced check",
        actor=ACTOR,
    )  # paid on the day but bounced: broken
    db_session.flush()


def test_promises_kept_are_those_paid_in_full_by_their_date(
    client, login, make_user, promises_book
):
    login(make_user("admin"))
    performance = download(client, "collectors")
    assert performance["sam@recourse.test"] == ["sam@recourse.test", "0", "1", "2", "160.00"]
    assert performance["kim@recourse.test"] == ["kim@recourse.test", "0", "0", "1", "0.00"]

    promises = download(client, "promises")
    assert promises["collector"][:3] == ["collector", "promises_made", "promised"]
    assert promises["sam@recourse.test"] == [
        "sam@recourse.test",
        "3",
        "220.00",
        "1",
        "100.00",
        "1",
        "50.00",
        "1",
        "70.00",
        "50.00%",
        "160.00",
    ]
    assert promises["kim@recourse.test"] == [
        "kim@recourse.test",
        "1",
        "30.00",
        "0",
        "0.00",
        "1",
        "30.00",
        "0",
        "0.00",
        "0.00%",
        "0.00",
    ]
    page = client.get("/agency/reports").get_data(as_text=True)
    chart = page[page.index('id="promises"') : page.index('id="alerts"')]
    assert "sam, Promised: $220" in chart and "sam, Kept: $100" in chart
    assert "sam, Collected: $160" in chart
    assert ">Promised</text>" in chart and ">Collected</text>" in chart


def test_vintages_cumulative_share_collected_by_months_since_placement(
    client, login, make_user, make_client, make_case, db_session
):
    acme = make_client("ACME", "Acme Plumbing")
    september = make_case(acme, principal=100_000, status="active", referred_on=dt.date(2026, 9, 1))
    october = make_case(acme, principal=150_000, status="active", referred_on=dt.date(2026, 10, 3))
    october_too = make_case(
        acme, principal=50_000, status="active", referred_on=dt.date(2026, 10, 20)
    )
    for case, amount, day, key, direct in (
        (september, 10_000, dt.date(2026, 9, 20), "s0", False),
        (september, 20_000, dt.date(2026, 10, 15), "s1", False),
        (september, 5_000, dt.date(2026, 11, 3), "s2", True),
        (october_too, 50_000, dt.date(2026, 11, 1), "o1", False),
    ):
        entry = post_payment(
            db_session,
            case,
            amount,
            external_id=key,
            received_at=day,
            method="check",
            actor=ACTOR,
            direct=direct,
        )
    reverse_payment(
        db_session,
        entry,
        amount_cents=5_000,
        external_id="o1-refund",
        received_at=dt.date(2026, 11, 20),
        reason="refund",
        actor=ACTOR,
    )
    assert october.id  # placed, nothing collected: in the October vintage's placed amount
    db_session.flush()
    login(make_user("admin"))
    rows = download(client, "vintages")
    head = rows["placement_month"]
    assert head[:4] == ["placement_month", "cases", "placed", "month_0"] and len(head) == 15
    # September: 100.00, then 300.00 by October, 350.00 by November (a direct payment).
    assert rows["2026-09"][:7] == ["2026-09", "1", "1000.00", "10.00%", "30.00%", "35.00%", ""]
    # October: 2000.00 placed; 500.00 collected in November less 50.00 refunded.
    assert rows["2026-10"][:6] == ["2026-10", "2", "2000.00", "0.00%", "22.50%", ""]
    assert rows["2026-11"][:5] == ["2026-11", "0", "0.00", "", ""]
    assert rows["2025-12"][:4] == ["2025-12", "0", "0.00", ""]
    page = client.get("/agency/reports").get_data(as_text=True)
    chart = page[page.index('id="vintages"') : page.index('id="aging"')]
    assert "<polyline" in chart and ">Sep 26</text>" in chart and ">Oct 26</text>" in chart
    assert "Sep 26, 2: 35%" in chart
