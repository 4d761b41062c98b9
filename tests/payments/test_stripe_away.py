"""Stripe away: the debtor gets a plain message (never a host, a port or an exception), nothing
is charged twice, and `plans charge-due` exits non-zero while installments are left pending."""

from __future__ import annotations

import json

import pytest

from payments.gateway import StripeGateway
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_autopay import TODAY, autopay_case, payments  # noqa: F401 (fixture)
from tests.payments.test_gateway import _dead_port
from tests.payments.test_portal_pay import portal_stripe, start_payment  # noqa: F401 (fixture)

INTERNALS = ("127.0.0.1", "HTTPConnectionPool", "port=", "Errno", "Traceback", "Max retries")


@pytest.fixture
def stripe_away(app):
    """The app's gateway pointed at a port nothing listens on, as when Stripe is unreachable."""
    away = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{_dead_port()}")
    working = app.extensions["recourse.gateway"]
    app.extensions["recourse.gateway"] = away
    yield working
    app.extensions["recourse.gateway"] = working
    away.close()


@pytest.mark.usefixtures("portal_stripe")
def test_the_pay_page_says_plainly_that_stripe_is_away(
    client, signed_in, make_client, make_case, stripe_away, db_session
):
    case = make_case(make_client(), principal=50_000, status="active")
    signed_in(case)
    response = start_payment(client, case, "50.00")
    page = response.get_data(as_text=True)
    assert response.status_code == 502
    assert "Could not reach Stripe; try again in a few minutes." in page
    assert not [word for word in INTERNALS if word in page]
    assert payments(db_session, case) == []


@pytest.mark.usefixtures("portal_stripe")
def test_charge_due_with_stripe_away_exits_non_zero_and_charges_once_when_back(
    app,
    cli,
    db_session,
    autopay_case,  # noqa: F811 (the fixture imported above)
    stripe_away,
    gateway,
):
    case, plan = autopay_case()
    away = cli.invoke(args=["plans", "charge-due", "--as-of", TODAY.isoformat(), "--json"])
    assert away.exit_code == 1
    assert json.loads(away.stdout.splitlines()[0])["pending"] == 1
    assert "1 installment(s) left pending" in away.output
    assert not [word for word in INTERNALS if word in away.output]
    assert payments(db_session, case) == []

    app.extensions["recourse.gateway"] = stripe_away  # Stripe is back
    back = cli.invoke(args=["plans", "charge-due", "--as-of", TODAY.isoformat(), "--json"])
    assert back.exit_code == 0, back.output
    assert json.loads(back.output)["charged"] == 1
    again = cli.invoke(args=["plans", "charge-due", "--as-of", TODAY.isoformat(), "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["charged"] == 0
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1
    assert len(payments(db_session, case)) == 1
