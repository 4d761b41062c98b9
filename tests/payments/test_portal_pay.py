"""Paying from the portal against a real local Stripe (localstripe): the server makes the
PaymentIntent, the card goes to Stripe only, and the payment counts once Stripe says it
succeeded, once, whether the browser or the webhook tells us first."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from cases.ledger import LedgerEntry, balance_cents
from tests.conftest import csrf_from, drain_jobs
from tests.payments.conftest import SECRET_KEY
from tests.payments.test_webhooks import deliver, event

PUBLISHABLE_KEY = "pk_test_12345"


@pytest.fixture
def portal_stripe(app, gateway, localstripe_url):
    """The app paying through localstripe, as `make run` sets it up."""
    before = (app.extensions.get("recourse.gateway"), dict(app.config))
    app.extensions["recourse.gateway"] = gateway
    app.config.update(
        STRIPE_API_BASE=localstripe_url,
        STRIPE_JS_URL=f"{localstripe_url}/js.stripe.com/v3/",
        STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        STRIPE_SECRET_KEY=SECRET_KEY,
    )
    yield localstripe_url
    app.extensions["recourse.gateway"] = before[0]
    app.config.clear()
    app.config.update(before[1])


def card_token(localstripe_url: str, number: str) -> str:
    """What Stripe.js does in the browser: the card goes to Stripe with the publishable key;
    the page gets back only the id of a tokenised card."""
    body = urllib.parse.urlencode(
        {
            "key": PUBLISHABLE_KEY,
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2031",
            "card[cvc]": "123",
        }
    ).encode()
    with urllib.request.urlopen(f"{localstripe_url}/v1/tokens", data=body) as response:
        return json.load(response)["card"]["id"]


def start_payment(client, case, amount: str):
    url = f"/portal/cases/{case.reference}/pay"
    return client.post(url, data={"amount": amount, "csrf_token": csrf_from(client.get(url))})


def intent_id(page: str) -> str:
    return page.split('data-secret="', 1)[1].split("_secret_", 1)[0]


def confirm(client, intent: str, card: str):
    token = csrf_from(client.get("/portal/"))
    return client.post(
        f"/portal/payments/{intent}/fake-confirm",
        json={"card": card},
        headers={"X-CSRFToken": token},
    )


def ledger(session, case):
    return session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case.id, LedgerEntry.kind == "payment")
        .order_by(LedgerEntry.id)
    ).all()


def test_a_card_payment_is_applied_once_with_a_receipt_page_and_email(
    app, db_session, signed_in, make_client, make_case, portal_stripe, smtp_server
):
    case = make_case(make_client(), principal=50_000, status="active")
    case.debtor.language = "es"
    client = signed_in(case)

    page = start_payment(client, case, "120.50")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'src="{portal_stripe}/js.stripe.com/v3/"' in html
    assert "localstripe-bridge.js" in html and "portal-card.js" in html
    intent = intent_id(html)
    # Coming back before paying changes nothing.
    assert client.get(f"/portal/payments/{intent}").status_code == 409
    assert ledger(db_session, case) == []

    answer = confirm(client, intent, card_token(portal_stripe, "4242424242424242"))
    assert answer.status_code == 200 and answer.json["status"] == "succeeded"

    back = client.get(f"/portal/payments/{intent}")
    assert back.status_code == 302 and "/portal/receipts/" in back.headers["Location"]
    [payment] = ledger(db_session, case)
    assert (payment.amount_cents, payment.external_id, payment.method) == (-12_050, intent, "card")
    assert balance_cents(db_session, case.id) == 37_950

    # Then Stripe's webhook arrives, and the browser comes back again: nothing moves twice.
    succeeded = event("payment_intent.succeeded", {"id": intent, "object": "payment_intent"})
    assert deliver(client, succeeded).status_code == 200
    client.get(f"/portal/payments/{intent}")
    assert len(ledger(db_session, case)) == 1 and balance_cents(db_session, case.id) == 37_950

    receipt = client.get(back.headers["Location"]).get_data(as_text=True)
    assert "Recibo" in receipt and "$120.50" in receipt and "$379.50" in receipt

    drain_jobs(app)
    [mail] = smtp_server.messages
    assert mail["To"] == "maria@example.com"
    assert mail["Subject"] == f"Recibo de su pago en {case.reference}"
    body = mail.get_content()
    assert "$120.50" in body and "$379.50" in body and intent in body
    assert "Esta es una comunicación de un cobrador de deudas." in body


def test_a_declined_card_gets_a_clear_message_and_changes_nothing(
    db_session, signed_in, make_client, make_case, portal_stripe
):
    case = make_case(make_client(), principal=50_000, status="active")
    client = signed_in(case)
    intent = intent_id(start_payment(client, case, "50").get_data(as_text=True))

    answer = confirm(client, intent, card_token(portal_stripe, "4000000000000341"))
    assert answer.status_code == 402
    assert answer.json["error"]["message"].startswith(
        "Your card was declined. Nothing was charged."
    )
    status = client.get(f"/portal/payments/{intent}")
    assert status.status_code == 409
    assert "The payment did not go through" in status.get_data(as_text=True)
    assert ledger(db_session, case) == [] and balance_cents(db_session, case.id) == 50_000


def test_amounts_outside_five_dollars_to_the_balance_are_refused(
    db_session, signed_in, make_client, make_case, portal_stripe
):
    case = make_case(make_client(), principal=10_000, status="active")
    client = signed_in(case)
    for amount, message in (
        ("4.99", "The smallest payment is $5.00."),
        ("100.01", "You owe $100.00; enter that or less."),
        ("ten dollars", "Enter an amount like 125.50."),
        ("", "This field is required."),
    ):
        response = start_payment(client, case, amount)
        assert response.status_code == 400, amount
        assert message in response.get_data(as_text=True)
        assert "data-secret" not in response.get_data(as_text=True)
    assert start_payment(client, case, "100.00").status_code == 200


@pytest.mark.parametrize(("principal", "offered"), [(499, False), (500, True)])
def test_pay_is_offered_from_five_dollars_owed(
    db_session, signed_in, make_client, make_case, principal, offered
):
    case = make_case(make_client(), principal=principal, status="active")
    client = signed_in(case)
    pay = f"/portal/cases/{case.reference}/pay"
    for page in ("/portal/", f"/portal/cases/{case.reference}"):
        assert (pay in client.get(page).get_data(as_text=True)) is offered, page
    assert (client.get(pay).status_code == 200) is offered


def test_another_debtors_payment_is_not_found(
    db_session, client, signed_in, make_client, make_case, portal_stripe
):
    acme = make_client()
    theirs = make_case(acme, last_name="Smith", status="active")
    mine = make_case(acme, last_name="Garcia", status="active")
    signed_in(theirs)
    their_intent = intent_id(start_payment(client, theirs, "20").get_data(as_text=True))
    client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})

    signed_in(mine)
    assert client.get(f"/portal/payments/{their_intent}").status_code == 404
    card = card_token(portal_stripe, "4242424242424242")
    assert confirm(client, their_intent, card).status_code == 404
    assert ledger(db_session, theirs) == []


def test_the_stand_in_for_stripe_servers_is_off_with_real_stripe(
    app, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    client = signed_in(case)
    app.config["STRIPE_API_BASE"] = ""
    assert confirm(client, "pi_123", "card_123").status_code == 404
