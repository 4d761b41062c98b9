"""Staff and client-user sessions end on the server (SPEC §11, shell/signed_in.py): a copied
cookie is worthless after sign-out, a password change, a deactivation or a role change; and
every session ends after 30 minutes idle or 12 hours, however active."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.sessions import SignInSession
from shell import settings
from tests.conftest import PASSWORD, SUITE_DAY, csrf_from, session_limit_defaults


def cookie_of(client) -> str:
    return client.get_cookie("session").value


def replay(app, cookie: str, path: str):
    """A request from another browser holding a copy of the cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get(path)


def signed_out(response) -> bool:
    return response.status_code == 302 and "/login" in response.location


def sessions_of(db_session, user) -> int:
    return db_session.scalar(
        sa.select(sa.func.count())
        .select_from(SignInSession)
        .where(SignInSession.user_id == user.id)
    )


def sign_out(client, home: str):
    return client.post("/logout", data={"csrf_token": csrf_from(client.get(home))})


def test_a_staff_cookie_copied_before_sign_out_is_signed_out_after(
    app, client, login, make_user, db_session
):
    user = make_user("collector")
    login(user)
    cookie = cookie_of(client)
    assert replay(app, cookie, "/agency/").status_code == 200  # the copy works meanwhile
    assert sessions_of(db_session, user) == 1

    assert sign_out(client, "/agency/").status_code == 302

    assert signed_out(replay(app, cookie, "/agency/"))
    assert signed_out(client.get("/agency/"))
    assert sessions_of(db_session, user) == 0


def test_a_client_users_cookie_copied_before_sign_out_is_signed_out_after(
    app, client, login, make_user, make_client, db_session
):
    user = make_user("client", client=make_client())
    login(user)
    cookie = cookie_of(client)
    assert replay(app, cookie, "/client/").status_code == 200

    sign_out(client, "/client/")

    assert signed_out(replay(app, cookie, "/client/"))
    assert sessions_of(db_session, user) == 0


def browser_of(app, user):
    """Another browser, with `user` signed in."""
    browser = app.test_client()
    page = browser.get("/login")
    response = browser.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 302
    return browser


def test_signing_out_ends_only_that_session(app, client, login, make_user):
    user = make_user("collector")
    login(user)
    elsewhere = browser_of(app, user)
    sign_out(client, "/agency/")
    assert elsewhere.get("/agency/").status_code == 200


def two_sessions(app, user):
    """`user` signed in in two browsers."""
    return browser_of(app, user), browser_of(app, user)


def edit_user(app, admin, user, **changes):
    """`admin` saves `user`'s page with these changes (None: a box left unchecked)."""
    browser = browser_of(app, admin)
    path = f"/agency/users/{user.id}"
    form = {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "client_id": str(user.client_id or 0),
        "password": "",
        "active": "y",
        **changes,
    }
    form = {k: v for k, v in form.items() if v is not None}
    response = browser.post(path, data={**form, "csrf_token": csrf_from(browser.get(path))})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def test_a_password_change_ends_every_session_of_that_user(app, make_user, db_session):
    user, bystander, admin = make_user("collector"), make_user("collector"), make_user("admin")
    first, second = two_sessions(app, user)
    other = browser_of(app, bystander)
    assert first.get("/agency/").status_code == 200 and second.get("/agency/").status_code == 200

    admin_browser = edit_user(app, admin, user, password="a-new-long-password")

    assert signed_out(first.get("/agency/")) and signed_out(second.get("/agency/"))
    assert sessions_of(db_session, user) == 0
    assert other.get("/agency/").status_code == 200  # another user's session goes on
    assert admin_browser.get("/agency/").status_code == 200
    event = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "user.updated", AuditEvent.entity_id == str(user.id)
        )
    )
    assert event.detail["changes"] == {"password": "changed", "sessions_ended": 2}


def test_a_deactivation_ends_every_session_of_that_user(app, make_user, db_session):
    user, admin = make_user("collector"), make_user("admin")
    first, second = two_sessions(app, user)

    edit_user(app, admin, user, active=None)  # unchecked

    assert signed_out(first.get("/agency/")) and signed_out(second.get("/agency/"))
    assert sessions_of(db_session, user) == 0


def test_a_role_change_ends_every_session_of_that_user(app, client, login, make_user, db_session):
    user, admin = make_user("collector"), make_user("admin")
    first, second = two_sessions(app, user)

    edit_user(app, admin, user, role="supervisor")

    assert signed_out(first.get("/agency/")) and signed_out(second.get("/agency/"))
    assert sessions_of(db_session, user) == 0
    login(user)  # signing in again gives the new role
    assert client.get("/agency/").status_code == 200


def test_a_name_change_leaves_the_sessions_alone(app, make_user, db_session):
    user, admin = make_user("collector"), make_user("admin")
    first, second = two_sessions(app, user)

    edit_user(app, admin, user, name="New Name")

    assert first.get("/agency/").status_code == 200 and second.get("/agency/").status_code == 200


def test_a_staff_session_ends_after_thirty_minutes_idle(
    app, client, login, make_user, session_limits
):
    user = make_user("collector")
    with time_machine.travel(SUITE_DAY, tick=False):
        login(user)
        cookie = cookie_of(client)
    with time_machine.travel(SUITE_DAY + dt.timedelta(minutes=29), tick=False):
        assert client.get("/agency/").status_code == 200  # used: the idle clock starts again
    with time_machine.travel(SUITE_DAY + dt.timedelta(minutes=58), tick=False):
        assert client.get("/agency/").status_code == 200
        assert signed_out(replay(app, cookie, "/agency/"))  # the copy was idle 58 minutes
    with time_machine.travel(SUITE_DAY + dt.timedelta(minutes=89), tick=False):
        assert signed_out(client.get("/agency/"))
        assert signed_out(client.get("/agency/"))  # and stays so


def test_a_staff_session_ends_twelve_hours_after_sign_in_however_active(
    app, client, login, make_user, session_limits
):
    user = make_user("collector")
    with time_machine.travel(SUITE_DAY, tick=False):
        login(user)
    minutes = 0
    while minutes < 12 * 60 - 20:
        minutes += 20
        with time_machine.travel(SUITE_DAY + dt.timedelta(minutes=minutes), tick=False):
            assert client.get("/agency/").status_code == 200, minutes
    with time_machine.travel(SUITE_DAY + dt.timedelta(hours=12, minutes=1), tick=False):
        assert signed_out(client.get("/agency/"))
        login(user)  # a new session
        assert client.get("/agency/").status_code == 200


def test_a_cookie_whose_session_record_is_gone_is_signed_out(
    app, client, login, make_user, db_session
):
    """The server's record is what counts: a cookie within its times is not enough."""
    user = make_user("collector")
    login(user)
    db_session.execute(sa.delete(SignInSession).where(SignInSession.user_id == user.id))
    assert signed_out(client.get("/agency/"))


def test_the_limits_are_30_and_15_minutes_idle_and_12_hours_by_default(tmp_path):
    assert session_limit_defaults(tmp_path) == {
        "STAFF_IDLE_MINUTES": 30,
        "PORTAL_IDLE_MINUTES": 15,
        "SESSION_LIFETIME_HOURS": 12,
    }


@pytest.mark.parametrize("value", ["0", "-5", "half an hour"])
def test_a_limit_that_is_not_a_whole_number_of_at_least_one_is_refused_by_name(tmp_path, value):
    loaded = settings.load(str(tmp_path), {}, {"SECRET_KEY": "unused", "STAFF_IDLE_MINUTES": value})
    assert loaded["CONFIG_PROBLEMS"] == [
        f"STAFF_IDLE_MINUTES must be a whole number from 1 or more, not {value!r}"
    ]


def test_records_of_sessions_past_their_lifetime_go_at_a_sign_in(
    app, client, login, make_user, db_session, session_limits
):
    user, other = make_user("collector"), make_user("collector")
    with time_machine.travel(SUITE_DAY, tick=False):
        login(user)
    with time_machine.travel(SUITE_DAY + dt.timedelta(hours=12, minutes=1), tick=False):
        browser_of(app, other)
    assert sessions_of(db_session, user) == 0 and sessions_of(db_session, other) == 1
