"""The client's reports: liquidation by placement month and aging, its own cases only."""

import csv
import datetime as dt
import io

from cases.audit import Actor
from payments.posting import post_payment
from tests.client_area.test_client_disputes import sign_in

ACTOR = Actor(None, "test")


def pay(db_session, case, cents, on, ref, direct=False):
    post_payment(
        db_session,
        case,
        cents,
        external_id=ref,
        received_at=on,
        method="check",
        actor=ACTOR,
        direct=direct,
        today=dt.date(2026, 11, 23),
    )


def acme_and_beta(db_session, make_client, make_case):
    acme, beta = make_client("ACME"), make_client("BETA", "Beta Dental")
    # ACME: two placed in September (one 400 days past due now), one in November.
    sept_old = make_case(
        acme, principal=100_000, referred_on=dt.date(2026, 9, 10), days_past_due=320
    )
    sept_new = make_case(
        acme, principal=50_000, referred_on=dt.date(2026, 9, 20), days_past_due=100
    )
    nov = make_case(acme, principal=20_000, interest=1_000, referred_on=dt.date(2026, 11, 2))
    pay(db_session, sept_old, 25_000, dt.date(2026, 10, 5), "chk-1")
    pay(db_session, sept_new, 5_000, dt.date(2026, 11, 1), "chk-2", direct=True)
    paid_off = make_case(acme, principal=7_000, referred_on=dt.date(2026, 11, 3), status="paid")
    # BETA: big numbers that must never show up in ACME's reports.
    make_case(beta, principal=9_999_900, referred_on=dt.date(2026, 9, 15))
    return acme, beta, (sept_old, sept_new, nov, paid_off)


def test_liquidation_and_aging_count_only_the_clients_own_cases(
    client, make_user, make_client, make_case, db_session
):
    acme, _, _ = acme_and_beta(db_session, make_client, make_case)
    sign_in(client, make_user("client", client=acme))
    page = client.get("/client/reports")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<svg" in text and "Liquidation by placement month" in text
    assert "99,999" not in text  # BETA's placement

    liquidation = list(csv.reader(io.StringIO(client.get("/client/reports/liquidation.csv").text)))
    assert liquidation == [
        ["placement_month", "cases", "placed", "collected", "liquidation_percent"],
        ["2026-11", "2", "280.00", "0.00", "0.00%"],
        ["2026-09", "2", "1500.00", "300.00", "20.00%"],
    ]
    aging = list(csv.reader(io.StringIO(client.get("/client/reports/aging.csv").text)))
    # Today (2026-11-23): the Sept-10 case is 320 + 74 = 394 days past due, Sept-20 is 164,
    # the November one 141; the paid case is not open.
    assert aging == [
        ["days_past_due", "open_cases", "balance"],
        ["under 90 days", "0", "0.00"],
        ["90–180", "2", "660.00"],
        ["181–365", "0", "0.00"],
        ["1–2 years", "1", "750.00"],
        ["over 2 years", "0", "0.00"],
    ]
    assert "attachment" in client.get("/client/reports/aging.csv").headers["Content-Disposition"]
    assert client.get("/client/reports/other.csv").status_code == 404


def test_another_clients_reports_show_none_of_acmes_figures(
    client, make_user, make_client, make_case, db_session
):
    _, beta, _ = acme_and_beta(db_session, make_client, make_case)
    sign_in(client, make_user("client", client=beta))
    liquidation = list(csv.reader(io.StringIO(client.get("/client/reports/liquidation.csv").text)))
    assert liquidation[1:] == [["2026-09", "1", "99999.00", "0.00", "0.00%"]]
    aging = list(csv.reader(io.StringIO(client.get("/client/reports/aging.csv").text)))
    assert [row[1] for row in aging[1:]] == ["0", "0", "1", "0", "0"]  # 189 days past due


def test_reports_are_for_client_users_only(client, login, make_user, make_client):
    assert client.get("/client/reports").status_code == 302  # signed out: to /login
    login(make_user("collector"))
    assert client.get("/client/reports").status_code in (302, 403)
