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
    "min_settlement": "70%",
    "max_plan_months": "12",
    **{"tier_rows-0-days": "90", "tier_rows-0-fee": "25%"},
    **{"tier_rows-1-days": "181", "tier_rows-1-fee": "33"},
    **{"tier_rows-2-days": "366", "tier_rows-2-fee": "40 %"},
    "legal_fee": "",
}


def tiers(*rows):
    """The form's five tier rows: these (days, fee) first, the rest empty."""
    rows = list(rows) + [("", "")] * (5 - len(rows))
    return {
        key: value
        for n, (days, fee) in enumerate(rows)
        for key, value in ((f"tier_rows-{n}-days", days), (f"tier_rows-{n}-fee", fee))
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
            **tiers(("90", "30%")),
            "legal_fee": "45%",
            "min_settlement": "65.5%",
            "active": "y",
        },
    )
    assert response.status_code == 302
    db_session.refresh(acme)
    assert acme.name == "Acme Plumbing Co" and acme.min_settlement_bps == 6550
    schedules = db_session.scalars(
        sa.select(FeeSchedule).where(FeeSchedule.client_id == acme.id)
    ).all()
    assert len(schedules) == 2  # the old schedule is kept; history is never rewritten
    assert current_schedule(db_session, acme.id).describe() == "90=3000"
    assert current_schedule(db_session, acme.id).legal_bps == 4500
    # Shown back as percentages and days, never basis points.
    page = client.get("/agency/clients/ACME").get_data(as_text=True)
    for shown in ('value="65.5%"', 'value="90"', 'value="30%"', 'value="45%"'):
        assert shown in page, shown
    assert "6550" not in page and "basis points" not in page
    new = client.get("/agency/clients/new").get_data(as_text=True)
    assert 'value="25%"' in new and 'value="181"' in new and 'value="70%"' in new
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "client.updated"))


def test_bad_client_input_gets_a_message_and_changes_nothing(client, login, make_user, db_session):
    login(make_user("admin"))
    post_form(client, "/agency/clients/new", CLIENT_FORM)
    before = db_session.scalar(sa.select(sa.func.count()).select_from(FeeSchedule))
    bad = [
        ({"code": "ACME"}, "already exists"),
        ({"code": "NEW1", **tiers(("ninety", "25%"))}, "Not a valid integer value."),
        ({"code": "NEW1", **tiers(("90", "25%"), ("90", "30%"))}, "same age"),
        ({"code": "NEW1", **tiers(("90", "twenty"))}, "Enter a percentage like 25% or 33.5%"),
        ({"code": "NEW1", **tiers(("90", "150%"))}, "A fee is from 0% to 100%."),
        ({"code": "NEW1", **tiers(("90", "2500"))}, "A fee is from 0% to 100%."),
        ({"code": "NEW1", **tiers(("90", ""))}, "fee tier 1: give both"),
        ({"code": "NEW1", **tiers()}, "at least one fee tier is needed"),
        ({"code": "NEW1", "min_settlement": "0"}, "from 0.01% to 100%"),
        ({"code": "NEW1", "min_settlement": "7000"}, "from 0.01% to 100%"),
        ({"code": "NEW1", "min_settlement": "70 percent"}, "Enter a percentage like 25%"),
        ({"code": "NEW1", "legal_fee": "-5%"}, "Enter a percentage like 25%"),
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
