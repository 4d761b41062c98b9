"""Admins manage clients (terms and fee tiers) and users through the pages."""

import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.clients import Client, client_by_code
from cases.users import User, user_by_email
from payments.fees import FeeSchedule, current_schedule
from tests.conftest import PASSWORD, csrf_from


def post_form(client, path, data):
    page = client.get(path)
    return client.post(path, data={**data, "csrf_token": csrf_from(page)})


CLIENT_FORM = {
    "code": "ACME",
    "name": "Acme Plumbing",
    "min_age_days": "90",
    "min_settlement_bps": "7000",
    "max_plan_months": "12",
    "fee_tiers": "90=2500,181=3300,366=4000",
    "legal_fee_bps": "",
}


def test_admin_creates_and_edits_a_client(client, login, make_user, db_session):
    login(make_user("admin"))
    response = post_form(client, "/agency/clients/new", CLIENT_FORM)
    assert response.status_code == 302
    acme = client_by_code(db_session, "ACME")
    assert acme.name == "Acme Plumbing"
    first = current_schedule(db_session, acme.id)
    assert first.describe() == "90=2500,181=3300,366=4000"
    assert "Acme Plumbing" in client.get("/agency/clients").get_data(as_text=True)

    response = post_form(
        client,
        "/agency/clients/ACME",
        {
            **CLIENT_FORM,
            "name": "Acme Plumbing Co",
            "fee_tiers": "90=3000",
            "legal_fee_bps": "4500",
            "min_settlement_bps": "6500",
            "active": "y",
        },
    )
    assert response.status_code == 302
    db_session.refresh(acme)
    assert acme.name == "Acme Plumbing Co" and acme.min_settlement_bps == 6500
    schedules = db_session.scalars(
        sa.select(FeeSchedule).where(FeeSchedule.client_id == acme.id)
    ).all()
    assert len(schedules) == 2  # the old schedule is kept; history is never rewritten
    assert current_schedule(db_session, acme.id).describe() == "90=3000"
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "client.updated"))


def test_bad_client_input_gets_a_message_and_changes_nothing(client, login, make_user, db_session):
    login(make_user("admin"))
    post_form(client, "/agency/clients/new", CLIENT_FORM)
    before = db_session.scalar(sa.select(sa.func.count()).select_from(FeeSchedule))
    bad = [
        ({"code": "ACME"}, "already exists"),
        ({"code": "NEW1", "fee_tiers": "ninety=25"}, "DAYS=BASIS_POINTS"),
        ({"code": "NEW1", "fee_tiers": "90=2500,90=3000"}, "same age"),
        ({"code": "NEW1", "min_settlement_bps": "0"}, "Number must be between"),
        ({"code": "NEW1", "name": ""}, "This field is required"),
        ({"code": "N!"}, "code must be"),
    ]
    for change, message in bad:
        response = post_form(client, "/agency/clients/new", {**CLIENT_FORM, **change})
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1
    assert db_session.scalar(sa.select(sa.func.count()).select_from(FeeSchedule)) == before


def test_html_in_a_name_is_shown_as_text(client, login, make_user):
    login(make_user("admin"))
    post_form(client, "/agency/clients/new", {**CLIENT_FORM, "name": "<script>alert(1)</script>"})
    page = client.get("/agency/clients").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_admin_creates_users_and_deactivates_one(
    client, login, make_user, make_client, db_session, app
):
    admin = make_user("admin")
    acme = make_client()
    login(admin)
    response = post_form(
        client,
        "/agency/users/new",
        {
            "email": "ap@acme.test",
            "name": "AP",
            "role": "client",
            "client_id": str(acme.id),
            "password": PASSWORD,
        },
    )
    assert response.status_code == 302
    ap = user_by_email(db_session, "ap@acme.test")
    assert ap.role == "client" and ap.client_id == acme.id

    response = post_form(
        client,
        f"/agency/users/{ap.id}",
        {
            "email": ap.email,
            "name": "AP",
            "role": "client",
            "client_id": str(acme.id),
            "password": "",
        },
    )  # "active" unchecked
    assert response.status_code == 302
    db_session.refresh(ap)
    assert ap.active is False
    other = app.test_client()
    page = other.get("/login")
    refused = other.post(
        "/login", data={"email": ap.email, "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    assert refused.status_code == 401


def test_bad_user_input_gets_a_message_and_changes_nothing(
    client, login, make_user, make_client, db_session
):
    admin = make_user("admin")
    acme = make_client()
    login(admin)
    base = {
        "email": "new@agency.test",
        "name": "",
        "role": "collector",
        "client_id": "0",
        "password": PASSWORD,
    }
    bad = [
        ({"password": "short"}, "at least 10 characters"),
        ({"role": "client"}, "needs a client"),
        ({"client_id": str(acme.id)}, "only client users"),
        ({"email": admin.email}, "already exists"),
        ({"email": "nope"}, "not a valid email address"),
    ]
    for change, message in bad:
        response = post_form(client, "/agency/users/new", {**base, **change})
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 1

    response = post_form(
        client,
        f"/agency/users/{admin.id}",
        {"email": admin.email, "role": "collector", "client_id": "0", "active": "y"},
    )
    assert response.status_code == 422
    assert "cannot deactivate yourself" in response.get_data(as_text=True)
    db_session.refresh(admin)
    assert admin.role == "admin"
