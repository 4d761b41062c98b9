"""Staff pages print times in the agency's zone (America/New_York in the suite), never UTC:
last sign-in, alerts, tokens, notices awaiting mailing, and the client area's activity."""

import datetime as dt

import sqlalchemy as sa

from cases.contacts import ComplianceAlert, Contact
from cases.sign_in_limits import SignInAlert
from cases.users import ApiToken
from tests.conftest import notice_mailed

# 03:30 UTC on the 23rd is 22:30 on the 22nd in New York (EST, UTC−5).
LATE = dt.datetime(2026, 11, 23, 3, 30, tzinfo=dt.UTC)
SHOWN = "2026-11-22 22:30 EST"


def test_last_sign_in_and_token_times_are_in_the_agency_zone(
    client, login, make_user, api_token, db_session
):
    admin, collector = make_user("admin"), make_user("collector")
    api_token(collector)
    token = db_session.scalars(sa.select(ApiToken)).one()
    token.last_used_at = LATE
    token.created_at = LATE
    login(admin)
    collector.last_sign_in_at = LATE
    db_session.flush()
    users = client.get("/agency/users").get_data(as_text=True)
    assert SHOWN in users and "03:30" not in users and " UTC" not in users
    access = client.get(f"/agency/users/{collector.id}/access").get_data(as_text=True)
    assert SHOWN in access and " UTC" not in access
    assert "2026-11-22" in access  # the day the token was made, in New York


def test_alerts_are_dated_in_the_agency_zone(
    client, login, make_user, make_client, make_case, db_session
):
    supervisor = make_user("supervisor")
    case = make_case(make_client(), status="active")
    db_session.add(ComplianceAlert(case_id=case.id, kind="notice_overdue", created_at=LATE))
    db_session.add(
        SignInAlert(key="staff:x@example.com", failures=9, addresses=4, last_failure_at=LATE)
    )
    db_session.flush()
    login(supervisor)
    page = client.get("/agency/alerts").get_data(as_text=True)
    assert page.count(SHOWN) == 2 and " UTC" not in page
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "Sign-in under attack" not in title  # the sign-in alerts are on the page itself
    assert "x@example.com" in page.split("</title>", 1)[1]


def test_a_notice_awaiting_mailing_shows_the_agency_day_it_was_sent(
    client, login, make_user, make_client, make_case, db_session
):
    supervisor = make_user("supervisor")
    case = make_case(make_client(), status="active")
    notice_mailed(case)
    case.validation_mailed_on = None
    case.validation_sent_at = LATE
    db_session.flush()
    login(supervisor)
    page = client.get("/agency/notices").get_data(as_text=True)
    assert f"{case.reference}</a> (sent 2026-11-22)" in page


def test_the_client_area_dates_contacts_in_the_agency_zone(
    client, login, make_user, make_client, make_case, db_session
):
    acme = make_client()
    case = make_case(acme, status="active")
    db_session.add(
        Contact(
            case_id=case.id,
            channel="call",
            direction="outbound",
            outcome="no_answer",
            occurred_at=LATE,
        )
    )
    db_session.flush()
    login(make_user("client", client=acme))
    dashboard = client.get("/client/").get_data(as_text=True)
    assert "2026-11-22 — outbound call" in dashboard
    page = client.get(f"/client/cases/{case.reference}").get_data(as_text=True)
    assert "<td>2026-11-22</td>" in page and "2026-11-23" not in page.split("Activity")[-1]
