"""Sign-in, roles, tenancy and CSRF (the sign-in limit: tests/cases/test_sign_in_limits.py)."""

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from tests.conftest import PASSWORD, csrf_from

STAFF_PAGES = ["/agency/"]
ADMIN_PAGES = ["/agency/clients", "/agency/clients/new", "/agency/users", "/agency/users/new"]
CLIENT_PAGES = ["/client/", "/client/cases"]


@pytest.mark.parametrize("path", STAFF_PAGES + ADMIN_PAGES + CLIENT_PAGES + ["/portal/"])
def test_signed_out_visitors_are_sent_to_the_right_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    expected = "/portal/login" if path.startswith("/portal") else "/login"
    assert response.headers["Location"].startswith(expected)


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        ("admin", STAFF_PAGES + ADMIN_PAGES, CLIENT_PAGES),
        ("supervisor", STAFF_PAGES, ADMIN_PAGES + CLIENT_PAGES),
        ("collector", STAFF_PAGES, ADMIN_PAGES + CLIENT_PAGES),
        ("client", CLIENT_PAGES, STAFF_PAGES + ADMIN_PAGES),
    ],
)
def test_each_role_reaches_only_its_pages(
    client, login, make_user, make_client, role, allowed, denied
):
    acme = make_client()
    user = make_user(role, client=acme if role == "client" else None)
    login(user)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in denied:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "You do not have access to this page." in response.get_data(as_text=True)


def test_a_client_user_sees_only_its_own_cases(client, login, make_user, make_client, make_case):
    acme, other = make_client("ACME"), make_client("OTHER", "Other Co")
    mine = make_case(acme, last_name="Mine")
    theirs = make_case(other, last_name="Theirs")
    login(make_user("client", client=acme))

    listing = client.get("/client/cases").get_data(as_text=True)
    assert mine.reference in listing
    assert theirs.reference not in listing
    assert client.get(f"/client/cases/{mine.reference}").status_code == 200
    assert client.get(f"/client/cases/{theirs.reference}").status_code == 404
    dashboard = client.get("/client/").get_data(as_text=True)
    assert "Acme Plumbing" in dashboard


def test_sign_in_and_out(client, login, make_user, db_session):
    user = make_user("collector")
    response = login(user)
    assert response.headers["Location"] == "/agency/"
    assert db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "user.signed_in", AuditEvent.entity_id == str(user.id)
        )
    )
    page = client.get("/agency/")
    out = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert out.status_code == 302
    assert client.get("/agency/").status_code == 302


def test_a_deactivated_user_cannot_sign_in(client, make_user):
    user = make_user("collector")
    user.active = False
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 401


def test_next_only_redirects_inside_the_site(app, db_session, make_user):

    user = make_user("admin")
    for target, expected in (
        ("/agency/users", "/agency/users"),
        ("https://evil.example/", "/agency/"),
        ("//evil.example/", "/agency/"),
    ):
        browser = app.test_client()
        page = browser.get("/login")
        response = browser.post(
            f"/login?next={target}",
            data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)},
        )
        assert response.headers["Location"] == expected


def test_forms_without_a_csrf_token_are_refused(client, make_user, db_session):
    user = make_user("admin")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/agency/").status_code == 302  # still signed out

    # Signed in, a state-changing form without the token changes nothing.
    page = client.get("/login")
    client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    response = client.post("/agency/clients/new", data={"code": "NOPE", "name": "No"})
    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)
    from cases.clients import Client

    assert db_session.scalar(sa.select(Client).where(Client.code == "NOPE")) is None


def test_security_headers_and_cookie_flags(client, make_user, app):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "https://js.stripe.com" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    user = make_user("admin")
    signed_in = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(response)},
    )
    cookie = next(c for c in signed_in.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


def test_passwords_are_hashed(make_user):
    user = make_user("admin")
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_error_pages_in_the_product_look(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "There is nothing at this address." in body and "recourse.css" in body


def test_healthz_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["checks"]["database"] == "ok"
