"""A client's early-out terms edited from the web (/agency/clients/<code>/early-out, admin
only): cadence steps (day, channel, message), conversion day, fee as % or dollars, reply address
and logo. Bad input gets a clear message and changes nothing; a saved change is audited and is
what `flask earlyout terms` shows."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.early_out import EarlyOutTerms
from tests.conftest import csrf_from

URL = "/agency/clients/ACME/early-out"


def _form(page, **changes) -> dict[str, str]:
    data = {
        "csrf_token": csrf_from(page),
        "convert_after_days": "120",
        "fee_kind": "flat",
        "fee_percent": "7.5%",
        "flat_fee": "7.50",
        "reply_to": "billing@acme.test",
        "logo": "img/acme.png",
        "plan_max_installments": "4",
        "plan_frequency": "biweekly",
    }
    steps = [(2, "email", "friendly"), (14, "letter", "firm"), (100, "email", "final")]
    for i in range(8):
        day, channel, tone = steps[i] if i < len(steps) else ("", "email", "friendly")
        data |= {f"steps-{i}-day": str(day), f"steps-{i}-channel": channel, f"steps-{i}-tone": tone}
    return data | changes


def test_an_admin_sees_the_terms_and_saves_a_change_the_cli_shows(
    client, cli, login, make_user, make_client, db_session
):
    acme = make_client()
    admin = make_user("admin")
    login(admin)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # The defaults: day 1 email, day 7 text, ..., conversion on day 90, 10% of what is paid.
    assert 'name="steps-1-day" type="text" value="7"' in html or 'value="7"' in html
    assert 'name="convert_after_days"' in html and 'value="90"' in html and 'value="10%"' in html
    assert "/agency/clients/ACME/early-out" in client.get("/agency/clients/ACME").get_data(
        as_text=True
    )

    saved = client.post(URL, data=_form(page))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    terms = db_session.get(EarlyOutTerms, acme.id)
    assert terms.cadence == [
        {"day": 2, "channel": "email", "tone": "friendly"},
        {"day": 14, "channel": "letter", "tone": "firm"},
        {"day": 100, "channel": "email", "tone": "final"},
    ]
    assert (terms.convert_after_days, terms.fee_kind, terms.fee_bps, terms.flat_fee_cents) == (
        120,
        "flat",
        750,
        750,
    )
    assert (terms.reply_to, terms.logo_path) == ("billing@acme.test", "img/acme.png")
    assert (terms.plan_max_installments, terms.plan_frequency) == (4, "biweekly")
    [event] = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "client.early_out_terms_set")
    ).all()
    assert event.actor_user_id == admin.id and event.entity_id == str(acme.id)
    assert event.detail["convert_after_days"] == 120
    assert "saved" in client.get(saved.location).get_data(as_text=True)

    shown = json.loads(cli.invoke(args=["earlyout", "terms", "--client", "ACME"]).output)
    assert shown["cadence"] == terms.cadence and shown["flat_fee_cents"] == 750
    assert shown["fee"] == "flat" and shown["convert_after_days"] == 120
    assert (shown["plan_max_installments"], shown["plan_frequency"]) == (4, "biweekly")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps-2-day": "115"}, "no reminder goes out in the 8 days before conversion on day 120"),
        ({"steps-1-day": "1"}, "cadence days must be different and in order"),
        ({"steps-0-day": "0"}, "A step&#39;s day is from 1 to 365."),
        ({"steps-0-day": "soon"}, "Not a valid integer value"),
        (
            {"steps-0-day": "", "steps-1-day": "", "steps-2-day": ""},
            "the cadence needs at least one step",
        ),
        ({"steps-0-channel": "fax"}, "Not a valid choice"),
        ({"convert_after_days": "20"}, "Accounts convert between day 30 and day 365 past due."),
        ({"convert_after_days": ""}, "Enter the day accounts convert to collection."),
        ({"fee_kind": "shares"}, "Not a valid choice"),
        ({"fee_percent": "60%"}, "the early-out percentage must be between 0% and 50%"),
        ({"fee_percent": "ten"}, "Enter a percentage like 25% or 33.5%"),
        ({"flat_fee": "lots"}, "Not saved: correct the fields marked below."),
        ({"flat_fee": "1500"}, "the flat fee per account must be between $0 and $1,000"),
        ({"reply_to": "billing at acme"}, "is not an email address"),
        ({"plan_max_installments": "1"}, "an early-out plan has from 2 to 6 installments"),
        ({"plan_max_installments": "9"}, "From 0 to 6."),
        ({"plan_frequency": "weekly"}, "Not a valid choice"),
        ({"logo": "../secret.png"}, "the logo is a path under static/"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(
    client, login, make_user, make_client, db_session, change, message
):
    acme = make_client()
    login(make_user("admin"))
    page = client.get(URL)
    refused = client.post(URL, data=_form(page, **change))
    assert refused.status_code == 422
    assert message in refused.get_data(as_text=True)
    assert db_session.get(EarlyOutTerms, acme.id) is None
    assert not db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "client.early_out_terms_set")
    ).all()


@pytest.mark.parametrize("role", ["collector", "supervisor"])
def test_only_an_admin_edits_the_terms(client, login, make_user, make_client, db_session, role):
    acme = make_client()
    login(make_user(role))
    data = _form(client.get("/agency/"))
    assert client.get(URL).status_code == 403
    assert client.post(URL, data=data).status_code == 403
    assert db_session.get(EarlyOutTerms, acme.id) is None


def test_a_client_user_cannot_reach_it_and_unknown_clients_are_404(
    client, login, make_user, make_client, db_session
):
    acme = make_client()
    login(make_user("client", client=acme))
    assert client.get(URL).status_code in (302, 403)
    assert db_session.get(EarlyOutTerms, acme.id) is None


def test_unknown_client_and_missing_csrf(client, login, make_user, make_client, db_session):
    acme = make_client()
    login(make_user("admin"))
    assert client.get("/agency/clients/NOPE/early-out").status_code == 404
    page = client.get(URL)
    data = _form(page)
    del data["csrf_token"]
    assert client.post(URL, data=data).status_code in (400, 422)
    assert db_session.get(EarlyOutTerms, acme.id) is None
