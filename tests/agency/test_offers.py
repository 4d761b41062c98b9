"""Settlement offers on the case screen and the supervisors' approval list."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.offers import SettlementOffer, accept_offer, bands_of, propose_offer
from tests.conftest import csrf_from, notice_mailed


@pytest.fixture
def make_case(make_case):
    """Cases whose validation notice was mailed long ago: offers here may run short (the
    deadlines inside the validation period are tested in tests/cases/test_deadlines.py)."""
    return lambda *args, **kwargs: notice_mailed(make_case(*args, **kwargs))


def propose(client, case, **data):
    page = client.get(f"/agency/cases/{case.reference}")
    form = {"offer-expires_on": "2026-12-07", "offer-installments": "1"}
    form.update({f"offer-{k}": v for k, v in data.items()})
    form["offer-csrf_token"] = csrf_from(page)
    return client.post(f"/agency/cases/{case.reference}/offers", data=form)


def offers(db_session, case):
    return db_session.scalars(
        sa.select(SettlementOffer).where(SettlementOffer.case_id == case.id)
    ).all()


def test_a_collector_offers_85_percent_alone(client, login, make_user, make_client, make_case):
    case = make_case(make_client(), status="active")
    login(make_user("collector"))
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "Propose settlement" in page and "No offers yet." in page
    response = propose(client, case, percent="85")
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Offer of $850.00 made; the debtor sees it in the portal." in page
    assert "<td>approved</td>" in page


def test_under_85_percent_goes_to_the_approval_list(
    client, login, make_user, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active")
    collector = make_user("collector")
    login(collector)
    response = propose(client, case, amount="750.00")
    page = client.get(response.location).get_data(as_text=True)
    assert "waits for a supervisor&#39;s approval" in page
    [offer] = offers(db_session, case)
    assert offer.status == "proposed"
    # A collector may neither see the list nor approve.
    assert client.get("/agency/offers").status_code == 403
    token = csrf_from(client.get(f"/agency/cases/{case.reference}"))
    denied = client.post(f"/agency/offers/{offer.id}/approve", data={"csrf_token": token})
    assert denied.status_code == 403 and offer.status == "proposed"

    client.post("/logout", data={"csrf_token": token})
    supervisor = make_user("supervisor")
    login(supervisor)
    listing = client.get("/agency/offers")
    text = listing.get_data(as_text=True)
    assert case.reference in text and "$750.00" in text and "75.00%" in text
    assert collector.email in text
    # Without the CSRF token nothing happens.
    assert client.post(f"/agency/offers/{offer.id}/approve").status_code == 400
    assert offer.status == "proposed"
    done = client.post(
        f"/agency/offers/{offer.id}/approve", data={"csrf_token": csrf_from(listing)}
    )
    assert done.status_code == 302
    db_session.refresh(offer)
    assert offer.status == "approved" and offer.approved_by_id == supervisor.id
    assert "No offers are waiting" in client.get("/agency/offers").get_data(as_text=True)
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.approved")
    ).one()
    assert event.actor_user_id == supervisor.id


def test_a_supervisor_withdraws_from_the_list(
    client, login, make_user, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active")
    login(make_user("supervisor"))
    propose(client, case, amount="760")  # a supervisor's own offer is approved
    [offer] = offers(db_session, case)
    assert offer.status == "approved"
    listing = client.get("/agency/offers")
    client.post(
        f"/agency/offers/{offer.id}/withdraw",
        data={"csrf_token": csrf_from(listing), "reason": "client recalled", "back": "case"},
    )
    db_session.refresh(offer)
    assert offer.status == "withdrawn"
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.withdrawn")
    ).one()
    assert event.reason == "client recalled"


def test_bad_offers_say_why_and_change_nothing(
    client, login, make_user, make_client, make_case, db_session
):
    case = make_case(make_client(min_settlement_bps=7000), status="active")
    login(make_user("collector"))
    for data, message in [
        ({"amount": "600"}, "under Acme Plumbing&#39;s floor of 70% ($700.00)"),
        ({"amount": "900", "percent": "90"}, "not both"),
        ({}, "give an amount or a percentage"),
        ({"percent": "lots"}, "enter the percentage as a number"),
        ({"amount": "900", "expires_on": "2027-03-01"}, "at most 60 days"),
        ({"amount": "900", "expires_on": ""}, "Expires on"),
    ]:
        response = propose(client, case, **data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), data
    assert offers(db_session, case) == []


def test_an_admin_sets_a_clients_offer_bands(client, login, make_user, make_client, db_session):
    acme = make_client(min_settlement_bps=7000)
    login(make_user("admin"))
    assert "Self-service offer bands" in client.get("/agency/clients/ACME").get_data(as_text=True)
    page = client.get("/agency/clients/ACME/bands")
    assert "No bands" in page.get_data(as_text=True)
    data = {
        "min_balance": "500",
        "max_balance": "",
        "pay_percent": "80",
        "valid_days": "14",
        "csrf_token": csrf_from(page),
    }
    added = client.post("/agency/clients/ACME/bands", data=data)
    assert added.status_code == 302
    text = client.get(added.location).get_data(as_text=True)
    assert "$500.00" in text and "no limit" in text and "80.00%" in text
    [band] = bands_of(db_session, acme.id)
    assert (band.min_balance_cents, band.max_balance_cents, band.pay_bps, band.valid_days) == (
        50_000,
        None,
        8000,
        14,
    )
    refused = client.post(
        "/agency/clients/ACME/bands", data={**data, "min_balance": "100", "pay_percent": "60"}
    )
    assert refused.status_code == 422
    assert "at least the client&#39;s floor (70%)" in refused.get_data(as_text=True)
    assert len(bands_of(db_session, acme.id)) == 1
    client.post(
        f"/agency/clients/ACME/bands/{band.id}/remove", data={"csrf_token": data["csrf_token"]}
    )
    assert bands_of(db_session, acme.id) == []


def test_collectors_cannot_set_bands(client, login, make_user, make_client):
    make_client()
    login(make_user("collector"))
    assert client.get("/agency/clients/ACME/bands").status_code == 403


def test_a_check_that_completes_an_accepted_offer_settles_the_case(
    client, login, make_user, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active")
    offer = propose_offer(
        db_session,
        case,
        amount_cents=90_000,
        expires_on=dt.date(2026, 12, 1),
        today=dt.date(2026, 11, 23),
        role="collector",
        actor=audit.Actor(None, "test"),
    )
    accept_offer(
        db_session,
        offer,
        actor=audit.Actor(None, "debtor"),
        today=dt.date(2026, 11, 23),
        wording="ok",
    )
    db_session.flush()
    login(make_user("collector"))
    page = client.get(f"/agency/cases/{case.reference}")
    response = client.post(
        f"/agency/cases/{case.reference}/payments",
        data={
            "pay-amount": "900.00",
            "pay-received_at": "2026-11-23",
            "pay-method": "check",
            "pay-reference": "1001",
            "pay-csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    text = client.get(response.location).get_data(as_text=True)
    assert "The settlement is paid: the rest is written off and the case is settled." in text
    assert "settlement writeoff" in text and "<td>paid</td>" in text
    db_session.refresh(case)
    assert case.status == "settled"
