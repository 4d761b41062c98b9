"""The debtor chooses a plan in the portal, saves a card for autopay with a SetupIntent against
a real local Stripe (localstripe), and confirms on-session an installment that needs it."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import urllib.request

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from cases.offers import SettlementOffer
from cases.plans import PaymentPlan
from payments.posting import LedgerEntry
from tests.payments.test_autopay import TODAY, autopay_case  # noqa: F401 - a fixture
from tests.payments.test_gateway import NEEDS_3DS, VISA, card
from tests.payments.test_portal_pay import portal_stripe  # noqa: F401 - a fixture
from tests.portal.plan_steps import confirm_plan

pytestmark = pytest.mark.usefixtures("portal_stripe")


def choose(client, case, **overrides):
    url = f"/portal/cases/{case.reference}/plan"
    data = {"frequency": "monthly", "count": "4", "first_on": "2026-11-23", "autopay": "y"}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    return confirm_plan(client, url, data)


def test_the_debtor_chooses_a_plan_and_saves_a_card_for_autopay(
    client, signed_in, make_client, make_case, db_session, stripe_api, cli, gateway
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Set up a payment plan" in page

    response = choose(client, case)

    plan = db_session.scalar(sa.select(PaymentPlan))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/plans/{plan.id}/autopay"
    assert case.status == "plan"
    assert [i.amount_cents for i in plan.installments] == [25_000] * 4
    form = client.get(f"/portal/plans/{plan.id}/autopay").get_data(as_text=True)
    assert "I authorise" in form
    secret = re.search(r'data-secret="(seti_\w+?_secret_\w+)"', form).group(1)
    setup_id = secret.split("_secret_")[0]

    # What confirmCardSetup does in the browser: the card goes to Stripe, never to us.
    stripe_api.v1.setup_intents.confirm(setup_id, params={"payment_method": card(stripe_api, VISA)})
    done = client.get(f"/portal/plans/{plan.id}/autopay/done?setup_intent={setup_id}")

    assert done.status_code == 302
    db_session.refresh(plan)
    assert plan.stripe_payment_method_id.startswith("pm_")
    assert plan.stripe_customer_id.startswith("cus_")
    assert plan.consent_text.startswith("I authorise") and plan.consented_at is not None
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Autopay is on" in page
    link = re.search(r'href="(/portal/cases/[^"]+/plan-agreement/\d+)"', page).group(1)
    pdf = client.get(link)
    text = " ".join(
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages).split()
    )
    assert "Payment plan agreement" in text and "2027-02-23 $250.00" in text
    assert "I authorise" in text

    case.reference = "RC-T" + setup_id[-12:].upper()  # unique at localstripe for the charge
    result = cli.invoke(args=["plans", "charge-due", "--as-of", "2026-11-23"])
    assert "1 charged" in result.output, result.output


def test_a_setup_intent_that_is_not_this_pages_saves_nothing(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)
    choose(client, case)
    plan = db_session.scalar(sa.select(PaymentPlan))
    client.get(f"/portal/plans/{plan.id}/autopay")

    assert (
        client.get(f"/portal/plans/{plan.id}/autopay/done?setup_intent=seti_x").status_code == 404
    )
    db_session.refresh(plan)
    assert plan.stripe_payment_method_id is None


def test_without_autopay_the_plan_is_paid_in_the_portal(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)

    response = choose(client, case, autopay=None, frequency="biweekly", count="8")

    assert response.headers["Location"] == f"/portal/cases/{case.reference}"
    plan = db_session.scalar(sa.select(PaymentPlan))
    assert (plan.autopay, len(plan.installments)) == (False, 8)
    assert plan.consent_text is not None
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Pay now" in page and "Your plan agreement (PDF)" in page


def test_a_plan_outside_the_bounds_is_refused_in_plain_words(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(max_plan_months=3), status="active", principal=100_000)
    signed_in(case)

    response = choose(client, case, count="4")

    assert response.status_code == 400
    assert "more payments than this account allows" in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(PaymentPlan)) is None
    assert case.status == "active"


def accepted_offer_allowing(db_session, case, payments: int, days: int = 30):
    offer = SettlementOffer(
        case_id=case.id,
        amount_cents=75_000,
        balance_cents=100_000,
        expires_on=TODAY + dt.timedelta(days=days),
        max_installments=payments,
        status="accepted",
    )
    db_session.add(offer)
    db_session.flush()
    return offer


def test_a_settlement_in_3_installments_cannot_become_a_6_installment_plan(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    offer = accepted_offer_allowing(db_session, case, 3)
    signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}/plan").get_data(as_text=True)
    assert "pay $750.00 in up to 3 payments, a down payment included, the last one by" in page
    assert "Weekly: up to 3 payments" in page and "Monthly: up to 3 payments" in page

    six = choose(client, case, frequency="weekly", count="6", autopay=None)
    three_and_down = choose(
        client, case, frequency="weekly", count="3", down_payment="100", autopay=None
    )
    too_late = choose(client, case, frequency="monthly", count="3", autopay=None)

    for response in (six, three_and_down):
        assert response.status_code == 400
        assert "Your settlement allows at most 3 payments" in response.get_data(as_text=True)
    assert too_late.status_code == 400
    by = offer.expires_on  # written out, as the debtor reads dates
    assert f"must be paid in full by {by:%B} {by.day}, {by.year}." in too_late.get_data(
        as_text=True
    )
    assert db_session.scalar(sa.select(PaymentPlan)) is None
    assert case.status == "active"

    response = choose(client, case, frequency="weekly", count="3", autopay=None)

    assert response.status_code == 302
    plan = db_session.scalar(sa.select(PaymentPlan))
    assert plan.offer_id == offer.id
    assert [i.amount_cents for i in plan.installments] == [25_000] * 3


def test_the_settlement_limits_are_in_spanish(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    case.debtor.language = "es"
    accepted_offer_allowing(db_session, case, 2)
    signed_in(case)

    response = choose(client, case, frequency="weekly", count="3", autopay=None)

    assert "Su acuerdo permite como máximo 2 pagos" in response.get_data(as_text=True)


def test_the_debtor_confirms_an_installment_their_bank_wanted_authenticated(
    client,
    signed_in,
    cli,
    db_session,
    autopay_case,  # noqa: F811 - the fixture imported above
    localstripe_url,
):
    case, plan = autopay_case(number=NEEDS_3DS)
    cli.invoke(args=["plans", "charge-due", "--as-of", TODAY.isoformat()])
    first = plan.installments[0]
    db_session.refresh(first)
    assert first.needs_authentication
    signed_in(case)

    page = client.get(f"/portal/installments/{first.id}/authenticate").get_data(as_text=True)
    secret = re.search(r'data-secret="(pi_\w+?_secret_\w+)"', page).group(1)
    # What confirmCardPayment does in the browser: the bank's 3-D Secure check, passed.
    request = urllib.request.Request(
        f"{localstripe_url}/v1/payment_intents/{first.payment_intent_id}/_authenticate?success=true",
        data=json.dumps({"key": "pk_test_12345", "client_secret": secret}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).close()
    done = client.get(f"/portal/installments/{first.id}/authenticated")

    assert done.status_code == 302
    db_session.refresh(first)
    assert first.status == "paid"
    [entry] = db_session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id, LedgerEntry.kind == "payment")
    ).all()
    assert entry.external_id == first.payment_intent_id
