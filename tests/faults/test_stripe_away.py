"""The fake Stripe stops answering (its process stopped with SIGSTOP, so calls hang until the
server's STRIPE_TIMEOUT_SECONDS) during a portal payment and during `plans charge-due`: the
debtor reads a plain message, `charge-due` exits non-zero with the installment left pending,
and once Stripe is back nothing has been charged or posted twice."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import sqlalchemy as sa
import stripe

from cases.case import Case
from cases.plans import PaymentPlan, create_plan, save_card
from payments.gateway import StripeGateway
from shell.timezone import agency_today
from tests.faults.conftest import (
    PUBLISHABLE_KEY,
    SEED,
    csrf,
    payments_on,
    portal_login,
    shown_internals,
    wait_for,
)
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_gateway import VISA, card

AWAY = "Could not reach Stripe"


@pytest.fixture
def stripe_api(world):
    http = stripe.RequestsClient()
    yield stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": world.stripe_url}, http_client=http
    )
    http.close()


@pytest.fixture
def paused(world):
    """Take Stripe away for a while in a test; it always comes back."""
    yield world.pause_stripe
    world.resume_stripe()


def card_token(world, number: str = VISA) -> str:
    """What Stripe.js does in the browser: the card goes to Stripe only; the page gets an id."""
    body = {
        "key": PUBLISHABLE_KEY,
        "card[number]": number,
        "card[exp_month]": "12",
        "card[exp_year]": "2031",
        "card[cvc]": "123",
    }
    answer = requests.post(f"{world.stripe_url}/v1/tokens", data=body, timeout=10)
    return answer.json()["card"]["id"]


def test_a_portal_payment_with_stripe_away_says_so_plainly_and_charges_once_when_back(
    world, seed, paused
):
    code = seed.client(f"S{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, principal=50_000)
    debtor = portal_login(world, case)
    pay_url = f"{world.base}/portal/cases/{case.case_reference}/pay"

    # Stripe away when the debtor asks to pay: a plain message, nothing made.
    token = csrf(debtor.get(pay_url, timeout=10).text)
    paused()
    answer = debtor.post(pay_url, data={"amount": "50.00", "csrf_token": token}, timeout=30)
    assert answer.status_code == 502
    assert f"{AWAY}; try again in a few minutes." in answer.text
    assert shown_internals(answer.text) == []
    world.resume_stripe()

    # Stripe back: the payment starts; then Stripe goes away as the card is confirmed.
    token = csrf(debtor.get(pay_url, timeout=10).text)
    answer = debtor.post(pay_url, data={"amount": "50.00", "csrf_token": token}, timeout=30)
    assert answer.status_code == 200, answer.text
    intent = answer.text.split('data-secret="', 1)[1].split("_secret_", 1)[0]
    card_id = card_token(world)
    headers = {"X-CSRFToken": csrf(debtor.get(f"{world.base}/portal/", timeout=10).text)}
    confirm_url = f"{world.base}/portal/payments/{intent}/fake-confirm"
    paused()
    answer = debtor.post(confirm_url, json={"card": card_id}, headers=headers, timeout=30)
    assert answer.status_code == 402
    message = answer.json()["error"]["message"]
    assert message.startswith(AWAY)
    assert shown_internals(message) == []
    # The browser comes back to check the payment, Stripe still away: no "not found", no 500.
    landing = debtor.get(f"{world.base}/portal/payments/{intent}", timeout=30)
    assert landing.status_code == 200 and landing.history[0].status_code == 302
    assert "We could not check your payment with Stripe just now." in landing.text
    assert shown_internals(landing.text) == []
    world.resume_stripe()

    # The debtor presses pay again; Stripe (which may have taken the first try after all), the
    # webhook and the page coming back all count one payment.
    answer = debtor.post(confirm_url, json={"card": card_id}, headers=headers, timeout=30)
    assert shown_internals(answer.text) == []
    landing = debtor.get(f"{world.base}/portal/payments/{intent}", timeout=30)
    assert landing.status_code == 200, landing.text
    assert "Thank you. Your payment was received." in landing.text
    assert shown_internals(landing.text) == []
    wait_for(lambda: payments_on(world, case.case_reference), "the payment to be posted")
    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=world.stripe_url)
    try:
        found = gateway.find_payment_intents(case_reference=case.case_reference)
    finally:
        gateway.close()
    # The first try, taken by Stripe once it came back, is a PaymentIntent with no card: unpaid.
    assert [i.id for i in found if i.status == "succeeded"] == [intent]
    assert {i.status for i in found if i.id != intent} <= {"requires_payment_method"}
    assert payments_on(world, case.case_reference) == [(5_000, intent)]


def autopay_plan(world, seed, stripe_api) -> str:
    """An active case on a monthly autopay plan of 4 x $250, the first due today, its card
    saved at the fake Stripe."""
    code = seed.client(f"P{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, principal=100_000)
    customer = stripe_api.v1.customers.create(params={"name": "Maria Garcia"}).id
    method = card(stripe_api, VISA, customer)

    def do(session):
        found = session.scalar(sa.select(Case).where(Case.reference == case.case_reference))
        today = agency_today()
        plan = create_plan(
            session,
            found,
            frequency="monthly",
            count=4,
            first_on=today,
            today=today,
            actor=SEED,
            autopay=True,
        )
        save_card(session, plan, customer_id=customer, payment_method_id=method, actor=SEED)

    seed.run(do)
    return case.case_reference


def test_charge_due_with_stripe_away_exits_non_zero_and_charges_once_when_back(
    world, seed, stripe_api, paused
):
    reference = autopay_plan(world, seed, stripe_api)

    paused()
    away = world.flask("plans", "charge-due", "--json")
    assert away.returncode == 1, away.stdout + away.stderr
    assert json.loads(away.stdout.splitlines()[0])["pending"] >= 1
    [error] = [line for line in away.stderr.splitlines() if line.startswith("Error:")]
    assert "installment(s) left pending" in error
    # The operator's log names the host it could not reach; the result and the error do not.
    assert shown_internals(away.stdout + error) == []
    assert payments_on(world, reference) == []
    world.resume_stripe()

    back = world.flask("plans", "charge-due", "--json")
    assert back.returncode == 0, back.stdout + back.stderr

    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=world.stripe_url)
    try:
        found = gateway.find_payment_intents(case_reference=reference)
    finally:
        gateway.close()
    assert [i.status for i in found] == ["succeeded"]
    assert [amount for amount, _ in payments_on(world, reference)] == [25_000]

    def installments(session):
        case_id = session.scalar(sa.select(Case.id).where(Case.reference == reference))
        plan = session.scalar(sa.select(PaymentPlan).where(PaymentPlan.case_id == case_id))
        return [i.status for i in plan.installments]

    assert seed.read(installments)[0] == "paid"
