"""Portal sessions end on the server (SPEC §8, §11): a copy of a debtor's cookie is worthless
once they sign out, on the cached balance pages as on every other; a session ends 15 minutes
idle (tests/portal/test_portal_login.py) and 12 hours after sign-in however active."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import time_machine

from bench.common import statements_run
from cases.sessions import SignInSession
from shell.extensions import db
from tests.conftest import SUITE_DAY, csrf_from, portal_sign_in


def replay(app, cookie: str, path: str):
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get(path)


def to_sign_in(response) -> bool:
    return response.status_code == 302 and "/portal/login" in response.location


def records_of(db_session, debtor_id: int) -> int:
    return db_session.scalar(
        sa.select(sa.func.count())
        .select_from(SignInSession)
        .where(SignInSession.debtor_id == debtor_id)
    )


def test_a_debtors_cookie_copied_before_sign_out_is_signed_out_after(
    app, db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    cookie = client.get_cookie("session").value
    pages = ["/portal/", f"/portal/cases/{case.reference}", "/portal/preferences"]
    for path in pages:
        assert replay(app, cookie, path).status_code == 200, path  # the copy works meanwhile
    assert records_of(db_session, case.debtor_id) == 1

    page = client.get("/portal/")
    assert client.post("/portal/logout", data={"csrf_token": csrf_from(page)}).status_code == 302

    for path in pages:
        assert to_sign_in(replay(app, cookie, path)), path
        assert to_sign_in(client.get(path)), path
    assert records_of(db_session, case.debtor_id) == 0


def test_a_copied_cookie_after_sign_out_changes_nothing(
    app, db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    token = csrf_from(client.get("/portal/preferences"))
    cookie = client.get_cookie("session").value
    client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})

    thief = app.test_client()
    thief.set_cookie("session", cookie)
    response = thief.post("/portal/language", data={"csrf_token": token, "lang": "es"})
    assert response.status_code == 302
    db_session.refresh(case.debtor)
    assert case.debtor.language == "en"


def test_signing_out_ends_only_that_browsers_session(
    app, db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    phone = app.test_client()
    assert portal_sign_in(phone, case.reference).status_code == 302

    client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})

    assert phone.get("/portal/").status_code == 200
    assert phone.get(f"/portal/cases/{case.reference}").status_code == 200
    assert records_of(db_session, case.debtor_id) == 1


def test_another_debtors_case_is_still_not_found_not_a_sign_in(
    app, db_session, signed_in, make_client, make_case
):
    acme = make_client()
    mine, theirs = make_case(acme), make_case(acme, last_name="Nguyen", postal_code="10002")
    client = signed_in(mine)
    assert client.get(f"/portal/cases/{theirs.reference}").status_code == 404
    assert client.get("/portal/").status_code == 200  # and the session goes on


def test_a_portal_session_ends_twelve_hours_after_sign_in_however_active(
    client, make_client, make_case, session_limits
):
    case = make_case(make_client(), status="active")
    with time_machine.travel(SUITE_DAY, tick=False):
        assert portal_sign_in(client, case.reference).status_code == 302
    minutes = 0
    while minutes < 12 * 60 - 14:
        minutes += 14
        with time_machine.travel(SUITE_DAY + dt.timedelta(minutes=minutes), tick=False):
            assert client.get("/portal/").status_code == 200, minutes
    with time_machine.travel(SUITE_DAY + dt.timedelta(hours=12, minutes=1), tick=False):
        assert to_sign_in(client.get(f"/portal/cases/{case.reference}"))
        assert portal_sign_in(client, case.reference).status_code == 302
        assert client.get("/portal/").status_code == 200


def test_a_cached_balance_page_checks_the_session_in_its_one_query(
    app, db_session, signed_in, make_client, make_case
):
    """The check costs no round trip: a page served from the cache makes one statement, the
    stamps query, and that statement is what checks the session's record."""
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    for path in ("/portal/", f"/portal/cases/{case.reference}"):
        assert client.get(path).status_code == 200  # rendered, and cached
        with statements_run(db.engine) as statements:
            assert client.get(path).status_code == 200
        reads = [
            s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))
        ]
        assert len(reads) == 1 and "sign_in_sessions" in reads[0], statements


def test_signing_in_again_in_the_same_browser_ends_the_session_it_held(
    app, db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    cookie = client.get_cookie("session").value

    assert portal_sign_in(client, case.reference).status_code == 302

    assert to_sign_in(replay(app, cookie, "/portal/"))
    assert client.get("/portal/").status_code == 200
    assert records_of(db_session, case.debtor_id) == 1


def sets_the_cookie(response) -> bool:
    return any(c.startswith("session=") for c in response.headers.getlist("Set-Cookie"))


def test_the_last_use_is_written_to_the_cookie_at_most_once_a_minute(
    client, make_client, make_case
):
    """Each write of the last-use time re-signs the cookie and sends it: a page viewed again
    within a minute sends none, and the idle limit (15 minutes) counts from the last write, so
    the session ends up to a minute early after its last use, never late."""
    case = make_case(make_client(), status="active")
    start = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assert portal_sign_in(client, case.reference).status_code == 302
        for path in ("/portal/", f"/portal/cases/{case.reference}"):
            assert client.get(path).status_code == 200  # rendered, and cached
    for seconds in (1, 30, 59):
        with time_machine.travel(start + dt.timedelta(seconds=seconds), tick=False):
            response = client.get("/portal/")
            assert response.status_code == 200 and not sets_the_cookie(response), seconds
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        response = client.get("/portal/")
        assert response.status_code == 200 and sets_the_cookie(response)  # written: 15:01:01
    with time_machine.travel(start + dt.timedelta(minutes=2), tick=False):
        assert not sets_the_cookie(client.get(f"/portal/cases/{case.reference}"))  # not written
    # 15 minutes after the last write, though 14 minutes and 2 seconds after the last use.
    with time_machine.travel(start + dt.timedelta(minutes=16, seconds=2), tick=False):
        assert to_sign_in(client.get("/portal/"))


def test_within_the_idle_limit_a_session_used_every_fourteen_minutes_goes_on(
    client, make_client, make_case
):
    case = make_case(make_client(), status="active")
    start = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assert portal_sign_in(client, case.reference).status_code == 302
    for n in range(1, 5):
        with time_machine.travel(start + dt.timedelta(minutes=14 * n), tick=False):
            assert client.get(f"/portal/cases/{case.reference}").status_code == 200, n


def test_a_cached_page_carries_this_sessions_signed_token_signed_once(
    app, db_session, signed_in, make_client, make_case
):
    """The signed CSRF token in a cached page is made once per session token in this process
    (it never expires: WTF_CSRF_TIME_LIMIT is off), good for a form, and another session's
    page carries its own."""
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    tokens = {csrf_from(client.get("/portal/")) for _ in range(3)}
    tokens.add(csrf_from(client.get(f"/portal/cases/{case.reference}")))
    assert len(tokens) == 1
    other = app.test_client()
    assert portal_sign_in(other, case.reference).status_code == 302
    theirs = csrf_from(other.get("/portal/"))
    assert theirs not in tokens
    # Each is good for its own session only.
    assert other.post("/portal/logout", data={"csrf_token": tokens.pop()}).status_code == 400
    assert (
        client.post("/portal/language", data={"csrf_token": theirs, "lang": "es"}).status_code
        == 400
    )
    db_session.refresh(case.debtor)
    assert case.debtor.language == "en"
    assert other.post("/portal/logout", data={"csrf_token": theirs}).status_code == 302
    assert to_sign_in(other.get("/portal/"))


def test_with_a_csrf_time_limit_a_signed_token_is_reused_for_a_minute_at_most(
    app, db_session, client, make_client, make_case
):
    case = make_case(make_client(), status="active")
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    try:
        start = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
        with time_machine.travel(start, tick=False):
            assert portal_sign_in(client, case.reference).status_code == 302
            first = csrf_from(client.get("/portal/"))
        with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
            assert csrf_from(client.get("/portal/")) == first
        with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
            again = csrf_from(client.get("/portal/"))
            assert again != first
            response = client.post("/portal/language", data={"csrf_token": again, "lang": "es"})
            assert response.status_code == 302
    finally:
        app.config["WTF_CSRF_TIME_LIMIT"] = None
    db_session.refresh(case.debtor)
    assert case.debtor.language == "es"
