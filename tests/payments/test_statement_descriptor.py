"""The early-out card payment names the client on the debtor's card statement (Stripe's
`statement_descriptor_suffix`); a collection payment never does (1692e(14)).

localstripe refuses the parameter, so the gateway sends it to Stripe's own servers only. To see
what goes to "real Stripe", a recording proxy (bench/fault_proxy.py) sits between the gateway,
told it talks to Stripe itself, and localstripe: it keeps each request's form and strips that
one parameter before forwarding."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench.fault_proxy import FaultProxy
from cases.ledger import LedgerEntry
from payments.gateway import StripeGateway, statement_suffix
from tests.conftest import csrf_from
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_early_out_pay import VISA, _placed
from tests.payments.test_portal_pay import card_token, intent_id, portal_stripe, start_payment

__all__ = ["portal_stripe"]

SUFFIX = "statement_descriptor_suffix"


@pytest.mark.parametrize(
    ("name", "prefix", "suffix"),
    [
        ("Acme Plumbing", "RCRS", "Acme Plumbing"),
        ("Acme Plumbing", "", "Acme Plumb"),  # an unknown prefix: room for the longest (10)
        ("Acme Plumbing & Heating Co", "RECOURSEAG", "Acme Plumb"),
        ('José\'s <Café> "Ñu" *\\', "RC", "Joses Cafe Nu"),
        ("  Dr.   Smith\tDental  ", "RC", "Dr. Smith Dental"),
        ("1234 5678", "RC", ""),  # no letter: none sent
        ("*<>'\"", "RC", ""),
        ("株式会社", "RC", ""),
    ],
)
def test_the_clients_name_is_cleaned_to_stripes_rules(name, prefix, suffix):
    assert statement_suffix(name, prefix) == suffix
    if suffix:
        assert len(prefix or "X" * 10) + 2 + len(suffix) <= 22
        assert not set(suffix) & set("<>\\'\"*")


@pytest.fixture
def proxy(localstripe_url):
    proxy = FaultProxy(localstripe_url, strip=(SUFFIX,)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def real_stripe(app, portal_stripe, proxy):
    """The app's gateway believes it talks to Stripe itself, through the recording proxy."""
    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=proxy.url, real_stripe=True)
    before = app.extensions["recourse.gateway"]
    app.extensions["recourse.gateway"] = gateway
    yield proxy
    app.extensions["recourse.gateway"] = before
    gateway.close()


def _intent_forms(proxy: FaultProxy) -> list[dict[str, str]]:
    return [
        form
        for method, path, form in proxy.requests
        if (method, path) == ("POST", "/v1/payment_intents")
    ]


def test_the_early_out_payment_names_the_client_on_the_card_statement(
    app, client, cli, db_session, make_client, tmp_path, real_stripe
):
    make_client()
    app.config["STRIPE_DESCRIPTOR_PREFIX"] = "RCRS"
    case, link = _placed(cli, db_session, tmp_path)
    page = client.get(link)
    card_page = client.post(link, data={"amount": "250.00", "csrf_token": csrf_from(page)})
    assert card_page.status_code == 200, card_page.get_data(as_text=True)
    [form] = _intent_forms(real_stripe)
    assert form[SUFFIX] == "Acme Plumbing"
    assert form["metadata[source]"] == "early_out"

    # localstripe never saw it (the proxy strips it), and the payment goes through as before.
    intent = intent_id(card_page.get_data(as_text=True))
    confirmed = client.post(
        f"{link}/payments/{intent}/fake-confirm",
        json={"card": card_token(app.config["STRIPE_API_BASE"], VISA)},
        headers={"X-CSRFToken": csrf_from(page)},
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    assert client.get(f"{link}/payments/{intent}").status_code == 200
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).where(
                LedgerEntry.case_id == case.id, LedgerEntry.kind == "payment"
            )
        )
        == 1
    )


def test_an_unknown_prefix_leaves_room_for_the_longest(
    app, client, cli, db_session, make_client, tmp_path, real_stripe
):
    make_client()
    app.config["STRIPE_DESCRIPTOR_PREFIX"] = ""
    _, link = _placed(cli, db_session, tmp_path)
    page = client.get(link)
    assert (
        client.post(link, data={"amount": "10.00", "csrf_token": csrf_from(page)}).status_code
        == 200
    )
    [form] = _intent_forms(real_stripe)
    assert form[SUFFIX] == "Acme Plumb"


def test_a_collection_payment_never_carries_the_clients_name(
    db_session, signed_in, make_client, make_case, real_stripe
):
    case = make_case(make_client(), principal=50_000, status="active")
    client = signed_in(case)
    assert start_payment(client, case, "120.50").status_code == 200
    [form] = _intent_forms(real_stripe)
    assert SUFFIX not in form and not any("descriptor" in key for key in form)
    assert "Acme" not in " ".join(form.values())


def test_localstripe_is_never_sent_the_suffix(gateway):
    """Against a custom server (localstripe) the gateway leaves it out: localstripe would refuse
    the whole payment ("Unexpected statement_descriptor_suffix")."""
    assert not gateway.real_stripe
    intent = gateway.create_payment_intent(
        amount_cents=1_000,
        case_reference="EO-SUFFIX-1",
        idempotency_key="suffix-test-1",
        statement_suffix="Acme Plumbing",
    )
    assert intent.status == "requires_payment_method"
    assert StripeGateway(SECRET_KEY, WEBHOOK_SECRET).real_stripe
