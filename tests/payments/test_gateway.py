"""The Stripe gateway against a real local Stripe (localstripe): customers, payments, declines,
saved cards, refunds, and webhook signatures."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import socket
import time
import uuid

import pytest
import stripe

from payments.gateway import (
    GatewayError,
    StripeGateway,
    WebhookSignatureError,
    sign_payload,
)
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET

VISA = "4242424242424242"
DECLINED = "4000000000000341"  # attaches to a customer, then every charge is declined
NEEDS_3DS = "4000002500003155"


@pytest.fixture
def case_reference() -> str:
    """The store outlives each test: every test pays into a case of its own."""
    return f"RC-TEST-{uuid.uuid4().hex[:10]}"


def _debtor_id() -> int:
    return uuid.uuid4().int % 10**9


def card(api: stripe.StripeClient, number: str, customer_id: str | None = None) -> str:
    """A PaymentMethod from raw card data, as only a fake Stripe accepts; attached if asked."""
    pm = api.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    if customer_id:
        api.v1.payment_methods.attach(pm.id, params={"customer": customer_id})
    return pm.id


def pay_in_browser(api: stripe.StripeClient, intent_id: str, number: str = VISA) -> None:
    """What confirmCardPayment does in the debtor's browser: a card, then confirmation."""
    api.v1.payment_intents.update(intent_id, params={"payment_method": card(api, number)})
    api.v1.payment_intents.confirm(intent_id)


def paid_intent(gateway, api, case_reference: str, amount: int) -> str:
    intent = gateway.create_payment_intent(
        amount_cents=amount, case_reference=case_reference, idempotency_key=uuid.uuid4().hex
    )
    pay_in_browser(api, intent.id)
    assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"
    return intent.id


# -- customers -------------------------------------------------------------------------------


def test_ensure_customer_makes_one_customer_per_debtor(gateway, stripe_api):
    debtor = _debtor_id()

    first = gateway.ensure_customer(debtor_id=debtor, name="Ana Díaz", email="ana@example.com")
    again = gateway.ensure_customer(debtor_id=debtor, name="Ana Díaz", email="ana@example.com")
    other = gateway.ensure_customer(debtor_id=debtor + 1, name="Bo Li", email=None)

    assert first.startswith("cus_")
    assert again == first
    assert other != first
    customer = stripe_api.v1.customers.retrieve(first)
    assert (customer.name, customer.email) == ("Ana Díaz", "ana@example.com")
    assert customer.metadata.to_dict() == {"debtor_id": str(debtor)}


def test_ensure_customer_keeps_name_and_email_current(gateway, stripe_api):
    debtor = _debtor_id()
    customer_id = gateway.ensure_customer(debtor_id=debtor, name="Ana Díaz", email=None)

    same = gateway.ensure_customer(debtor_id=debtor, name="Ana Díaz-Ruiz", email="ana@example.com")

    assert same == customer_id
    customer = stripe_api.v1.customers.retrieve(customer_id)
    assert (customer.name, customer.email) == ("Ana Díaz-Ruiz", "ana@example.com")


# -- payment intents -------------------------------------------------------------------------


def test_payment_intent_confirmed_with_a_card_succeeds(gateway, stripe_api, case_reference):
    customer_id = gateway.ensure_customer(debtor_id=_debtor_id(), name="Ana Díaz", email=None)

    intent = gateway.create_payment_intent(
        amount_cents=12_345,
        case_reference=case_reference,
        idempotency_key="portal-pay-1",
        customer_id=customer_id,
        description="Payment on your account",
        metadata={"source": "portal"},
    )

    assert intent.id.startswith("pi_")
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.amount_cents == 12_345 and intent.currency == "usd"
    assert intent.amount_received_cents == 0
    assert intent.metadata == {
        "case_reference": case_reference,
        "idempotency_key": "portal-pay-1",
        "source": "portal",
        "description": "Payment on your account",
    }
    assert intent.customer_id == customer_id
    assert intent.created.tzinfo is dt.UTC
    # localstripe stamps with the real clock, not the suite's travelled one.
    assert intent.created > dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert not intent.succeeded

    pay_in_browser(stripe_api, intent.id, VISA)
    paid = gateway.retrieve_payment_intent(intent.id)

    assert paid.status == "succeeded" and paid.succeeded
    assert paid.amount_received_cents == 12_345
    assert paid.latest_charge_id.startswith("ch_")
    assert paid.payment_method_id.startswith("pm_")
    assert paid.last_error_code is None
    assert paid.metadata["case_reference"] == case_reference
    assert paid.created == intent.created


def test_a_card_declined_in_the_browser_leaves_it_unpaid(gateway, stripe_api, case_reference):
    intent = gateway.create_payment_intent(
        amount_cents=5_000, case_reference=case_reference, idempotency_key="portal-pay-2"
    )

    with pytest.raises(stripe.CardError):  # what Stripe.js shows the debtor
        pay_in_browser(stripe_api, intent.id, DECLINED)

    unpaid = gateway.retrieve_payment_intent(intent.id)
    assert unpaid.status == "requires_payment_method"
    assert unpaid.amount_received_cents == 0
    assert unpaid.last_error_code == "card_declined"
    assert unpaid.last_error_message


def test_find_payment_intents_by_case_and_by_attempt(gateway, stripe_api, case_reference):
    first = gateway.create_payment_intent(
        amount_cents=1_000, case_reference=case_reference, idempotency_key="attempt-1"
    )
    second = gateway.create_payment_intent(
        amount_cents=2_000, case_reference=case_reference, idempotency_key="attempt-2"
    )
    gateway.create_payment_intent(
        amount_cents=3_000, case_reference=f"{case_reference}-OTHER", idempotency_key="attempt-1"
    )
    pay_in_browser(stripe_api, second.id)

    found = gateway.find_payment_intents(case_reference=case_reference)
    by_attempt = gateway.find_payment_intents(
        case_reference=case_reference, idempotency_key="attempt-2"
    )

    assert {i.id: i.status for i in found} == {
        first.id: "requires_payment_method",
        second.id: "succeeded",
    }
    assert found[0].created <= found[1].created
    assert [i.id for i in by_attempt] == [second.id]
    assert gateway.find_payment_intents(case_reference="RC-NO-SUCH-CASE") == []
    assert gateway.find_payment_intents(case_reference=case_reference, idempotency_key="x") == []


def test_find_payment_intents_reads_past_the_first_page(gateway, case_reference):
    filler = f"{case_reference}-FILLER"
    for n in range(101):  # one page is 100
        gateway.create_payment_intent(
            amount_cents=100, case_reference=filler, idempotency_key=f"filler-{n}"
        )
    last = gateway.create_payment_intent(
        amount_cents=4_200, case_reference=case_reference, idempotency_key="after-the-filler"
    )

    assert [i.id for i in gateway.find_payment_intents(case_reference=case_reference)] == [last.id]
    assert len(gateway.find_payment_intents(case_reference=filler)) == 101


def test_amounts_must_be_positive_whole_cents(gateway, case_reference):
    for amount in (0, -5, 10.5, True):
        with pytest.raises(ValueError, match="positive whole number of cents"):
            gateway.create_payment_intent(
                amount_cents=amount, case_reference=case_reference, idempotency_key="bad"
            )
    assert gateway.find_payment_intents(case_reference=case_reference) == []


# -- saved cards and off-session charges -----------------------------------------------------


def test_setup_intent_saves_a_card_for_autopay(gateway, stripe_api):
    customer_id = gateway.ensure_customer(debtor_id=_debtor_id(), name="Ana Díaz", email=None)

    setup = gateway.create_setup_intent(customer_id=customer_id, idempotency_key="setup-1")

    assert setup.id.startswith("seti_")
    assert setup.client_secret.startswith(f"{setup.id}_secret_")
    assert setup.status == "requires_payment_method"
    assert setup.payment_method_id is None

    pm = card(stripe_api, VISA)  # confirmCardSetup in the browser
    stripe_api.v1.setup_intents.confirm(setup.id, params={"payment_method": pm})
    saved = gateway.retrieve_setup_intent(setup.id)

    assert (saved.status, saved.payment_method_id) == ("succeeded", pm)


def test_off_session_charge_succeeds(gateway, stripe_api, case_reference):
    customer_id = gateway.ensure_customer(debtor_id=_debtor_id(), name="Ana Díaz", email=None)
    pm = card(stripe_api, VISA, customer_id)

    charged = gateway.charge_off_session(
        amount_cents=2_500,
        customer_id=customer_id,
        payment_method_id=pm,
        case_reference=case_reference,
        idempotency_key="installment-1",
        metadata={"installment": "1"},
    )

    assert charged.status == "succeeded"
    assert charged.amount_received_cents == 2_500
    assert (charged.customer_id, charged.payment_method_id) == (customer_id, pm)
    assert charged.metadata == {
        "case_reference": case_reference,
        "idempotency_key": "installment-1",
        "installment": "1",
    }
    assert not charged.needs_authentication


def test_off_session_decline_is_an_answer_not_an_exception(gateway, stripe_api, case_reference):
    customer_id = gateway.ensure_customer(debtor_id=_debtor_id(), name="Ana Díaz", email=None)
    pm = card(stripe_api, DECLINED, customer_id)

    declined = gateway.charge_off_session(
        amount_cents=2_500,
        customer_id=customer_id,
        payment_method_id=pm,
        case_reference=case_reference,
        idempotency_key="installment-2",
    )

    assert declined.id.startswith("pi_")
    assert declined.status == "requires_payment_method"
    assert declined.last_error_code == "card_declined"
    assert declined.amount_received_cents == 0
    assert not declined.succeeded and not declined.needs_authentication
    # The failed attempt is on record, so a retry can tell it was tried and not paid.
    [found] = gateway.find_payment_intents(
        case_reference=case_reference, idempotency_key="installment-2"
    )
    assert (found.id, found.status) == (declined.id, "requires_payment_method")


def test_off_session_charge_that_needs_authentication(gateway, stripe_api, case_reference):
    customer_id = gateway.ensure_customer(debtor_id=_debtor_id(), name="Ana Díaz", email=None)
    pm = card(stripe_api, NEEDS_3DS, customer_id)

    pending = gateway.charge_off_session(
        amount_cents=2_500,
        customer_id=customer_id,
        payment_method_id=pm,
        case_reference=case_reference,
        idempotency_key="installment-3",
    )

    assert pending.status == "requires_action"
    assert pending.needs_authentication
    assert pending.amount_received_cents == 0


# -- refunds ---------------------------------------------------------------------------------


def test_full_refund(gateway, stripe_api, case_reference):
    intent_id = paid_intent(gateway, stripe_api, case_reference, 2_000)

    refund = gateway.refund(payment_intent_id=intent_id, amount_cents=None, idempotency_key="r-1")

    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount_cents, refund.payment_intent_id) == (
        "succeeded",
        2_000,
        intent_id,
    )


def test_partial_refund(gateway, stripe_api, case_reference):
    intent_id = paid_intent(gateway, stripe_api, case_reference, 2_000)

    refund = gateway.refund(payment_intent_id=intent_id, amount_cents=500, idempotency_key="r-2")

    assert (refund.status, refund.amount_cents, refund.payment_intent_id) == (
        "succeeded",
        500,
        intent_id,
    )


def test_refunding_an_unpaid_intent_is_refused_with_a_message(gateway, case_reference):
    intent = gateway.create_payment_intent(
        amount_cents=2_000, case_reference=case_reference, idempotency_key="unpaid"
    )

    with pytest.raises(GatewayError, match="Cannot refund a failed payment") as refused:
        gateway.refund(payment_intent_id=intent.id, amount_cents=None, idempotency_key="r-3")
    assert refused.value.http_status == 400
    assert not refused.value.retryable


# -- failures --------------------------------------------------------------------------------


def test_unknown_payment_intent_is_a_gateway_error(gateway):
    with pytest.raises(GatewayError, match="Stripe refused the request") as missing:
        gateway.retrieve_payment_intent("pi_doesnotexist")
    assert missing.value.http_status == 404


def test_unreachable_stripe_is_a_retryable_gateway_error():
    offline = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{_dead_port()}")

    with pytest.raises(GatewayError, match="Could not reach Stripe") as down:
        offline.retrieve_payment_intent("pi_anything")

    assert down.value.retryable
    offline.close()


def _dead_port() -> int:
    with socket.socket() as probe:  # a 127.0.0.1 port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_proxy_is_the_one_set_when_the_gateway_was_made(
    localstripe_url, monkeypatch, case_reference
):
    """Proxy settings are read from the environment once, when the gateway is made (not on
    every request, which cost a tenth of a charge's CPU), and then used."""
    dead_proxy = f"http://127.0.0.1:{_dead_port()}"
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    made_without = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=localstripe_url)
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    made_with = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=localstripe_url)
    try:
        # Made before the proxy was set: goes straight to Stripe.
        assert made_without.find_payment_intents(case_reference=case_reference) == []
        # Made after: goes through the (dead) proxy.
        with pytest.raises(GatewayError, match="Could not reach Stripe"):
            made_with.find_payment_intents(case_reference=case_reference)
    finally:
        made_without.close()
        made_with.close()


def test_a_gateway_pickles_as_its_settings(gateway, stripe_api, case_reference):
    """For autopay's worker processes: a copy reaches the same Stripe with connections of its
    own."""
    copy = pickle.loads(pickle.dumps(gateway))
    customer_id = copy.ensure_customer(debtor_id=_debtor_id(), name="Pia Copy", email=None)
    charged = copy.charge_off_session(
        amount_cents=2_500,
        customer_id=customer_id,
        payment_method_id=card(stripe_api, VISA, customer_id),
        case_reference=case_reference,
        idempotency_key="installment-copy-1",
    )
    assert [i.id for i in gateway.find_payment_intents(case_reference=case_reference)] == [
        charged.id
    ]
    copy.close()


# -- webhooks --------------------------------------------------------------------------------


def _event(case_reference: str = "RC-2611-00042") -> bytes:
    return json.dumps(
        {
            "id": "evt_test_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "metadata": {"case_reference": case_reference}}},
        }
    ).encode()


def test_construct_event_accepts_a_valid_signature(gateway):
    payload = _event()

    event = gateway.construct_event(payload, sign_payload(payload, WEBHOOK_SECRET))

    assert type(event) is dict
    assert event["id"] == "evt_test_1"
    assert event["type"] == "payment_intent.succeeded"
    assert event["data"]["object"]["metadata"]["case_reference"] == "RC-2611-00042"


def test_construct_event_accepts_a_signature_inside_the_tolerance(gateway):
    payload = _event()
    header = sign_payload(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 280)

    assert gateway.construct_event(payload, header)["id"] == "evt_test_1"


@pytest.mark.parametrize(
    "why",
    ["tampered payload", "wrong secret", "stale timestamp", "missing header", "empty header",
     "garbled header", "no v1 signature"],
)  # fmt: skip
def test_construct_event_refuses_what_stripe_did_not_sign_just_now(gateway, why):
    payload = _event()
    header = sign_payload(payload, WEBHOOK_SECRET)
    if why == "tampered payload":
        payload = _event(case_reference="RC-2611-99999")
    elif why == "wrong secret":
        header = sign_payload(payload, "whsec_someone_else")
    elif why == "stale timestamp":
        header = sign_payload(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    elif why == "missing header":
        header = None
    elif why == "empty header":
        header = ""
    elif why == "garbled header":
        header = "t=yesterday,v1=zz"
    elif why == "no v1 signature":
        header = header.replace("v1=", "v0=")

    with pytest.raises(WebhookSignatureError):
        gateway.construct_event(payload, header)


def test_construct_event_refuses_a_signed_body_that_is_not_an_event(gateway):
    for payload in (b"not json", b"[1, 2]", b'{"id": "evt_1"}', b"\xff\xfe"):
        with pytest.raises(WebhookSignatureError):
            gateway.construct_event(payload, sign_payload(payload, WEBHOOK_SECRET))


def test_webhook_signature_error_is_a_value_error():
    assert issubclass(WebhookSignatureError, ValueError)


def test_sign_payload_matches_stripes_own_scheme():
    payload = _event()
    ours = sign_payload(payload, WEBHOOK_SECRET, timestamp=1_800_000_000)
    theirs = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), WEBHOOK_SECRET, timestamp=1_800_000_000
    )
    assert ours == theirs
