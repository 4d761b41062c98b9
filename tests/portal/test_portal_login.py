"""The portal's own sign-in: case reference + last name (or company) + ZIP, rate-limited."""

import datetime as dt

import time_machine

from tests.conftest import portal_sign_in


def test_a_debtor_signs_in_and_sees_all_their_open_cases(client, make_client, make_case):
    acme, other = make_client(), make_client("OTHER", "Other Co")
    case = make_case(acme, last_name="García", postal_code="10001", principal=50_000)
    second = make_case(other, principal=20_000)
    second.debtor_id = case.debtor_id  # the same debtor, linked at referral
    stranger = make_case(acme, last_name="Smith")

    response = portal_sign_in(client, case.reference.lower(), "garcia", "10001-1234")
    assert response.status_code == 302
    page = client.get("/portal/").get_data(as_text=True)
    assert case.reference in page and second.reference in page
    assert "$500.00" in page and "$200.00" in page
    assert stranger.reference not in page


def test_a_commercial_debtor_signs_in_with_the_company_name(client, make_client, make_case):
    case = make_case(make_client(), kind="commercial", company_name="Riverside Bakery LLC")
    assert (
        portal_sign_in(client, case.reference, "Riverside Bakery LLC", "10001").status_code == 302
    )


def test_wrong_details_do_not_sign_in(client, make_client, make_case):
    case = make_case(make_client(), last_name="Garcia", postal_code="10001")
    for ref, name, zip_code in (
        (case.reference, "Garcia", "99999"),
        (case.reference, "Smith", "10001"),
        ("RC-0000-00000", "Garcia", "10001"),
    ):
        response = portal_sign_in(client, ref, name, zip_code)
        assert response.status_code == 401
        assert "could not find a case" in response.get_data(as_text=True)
    assert client.get("/portal/").status_code == 302


def test_the_portal_session_ends_after_fifteen_idle_minutes(client, make_client, make_case):
    case = make_case(make_client(), last_name="Garcia", postal_code="10001")
    start = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assert portal_sign_in(client, case.reference, "Garcia", "10001").status_code == 302
    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        assert client.get("/portal/").status_code == 200  # activity renews the session
    with time_machine.travel(start + dt.timedelta(minutes=28), tick=False):
        assert client.get("/portal/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=44), tick=False):
        response = client.get("/portal/")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/portal/login")


def test_staff_sign_in_does_not_open_the_portal(client, login, make_user, make_client):
    make_client()
    login(make_user("admin"))
    assert client.get("/portal/").status_code == 302
