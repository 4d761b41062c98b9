"""The collector sets up a payment plan on the case screen; its agreement is kept as a PDF."""

from __future__ import annotations

import datetime as dt
import io
import json

import sqlalchemy as sa
from pypdf import PdfReader

from cases.documents import Document
from cases.offers import SettlementOffer
from cases.plans import PaymentPlan
from tests.agency.test_casework import act


def plan_form(**overrides):
    data = {
        "plan-frequency": "monthly",
        "plan-count": "3",
        "plan-down_payment": "100",
        "plan-first_on": "2026-12-01",
    }
    data.update(overrides)
    return data


def test_a_collector_sets_up_a_plan_and_its_agreement_is_kept(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=100_000)

    response = act(client, case, "plans", plan_form())

    assert response.status_code == 302, response.get_data(as_text=True)
    plan = db_session.scalar(sa.select(PaymentPlan))
    assert (plan.frequency, plan.total_cents, plan.down_payment_cents) == (
        "monthly",
        100_000,
        10_000,
    )
    assert [(i.due_on.isoformat(), i.amount_cents) for i in plan.installments] == [
        ("2026-12-01", 10_000),
        ("2027-01-01", 30_000),
        ("2027-02-01", 30_000),
        ("2027-03-01", 30_000),
    ]
    assert case.status == "plan"
    page = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert "Payment plan" in page and "2027-03-01" in page
    assert "Set up a payment plan" not in page  # one plan at a time

    document = db_session.scalar(sa.select(Document).where(Document.kind == "plan_agreement"))
    pdf = client.get(f"/agency/documents/{document.id}")
    text = " ".join(PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text().split())
    assert "Payment plan agreement" in text
    assert "$1,000.00" in text and "2027-03-01 $300.00" in text


def test_a_plan_outside_the_bounds_is_refused_with_the_reason(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(max_plan_months=6), status="active", principal=50_000)

    too_long = act(client, case, "plans", plan_form(**{"plan-count": "7"}))
    too_small = act(
        client, case, "plans", plan_form(**{"plan-frequency": "weekly", "plan-count": "26"})
    )
    too_late = act(client, case, "plans", plan_form(**{"plan-first_on": "2027-01-15"}))

    assert too_long.status_code == 422
    assert "at most 6 monthly installments" in too_long.get_data(as_text=True)
    assert "at least $25.00" in too_small.get_data(as_text=True)
    assert "within 30 days" in too_late.get_data(as_text=True)
    assert db_session.scalar(sa.select(PaymentPlan)) is None
    assert case.status == "active"


def test_a_collector_cannot_stretch_a_settlement_past_the_installments_it_allows(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), status="active", principal=100_000)
    db_session.add(
        SettlementOffer(
            case_id=case.id,
            amount_cents=80_000,
            balance_cents=100_000,
            expires_on=dt.date(2027, 1, 20),
            max_installments=3,
            status="accepted",
        )
    )
    db_session.flush()
    weekly = {"plan-frequency": "weekly", "plan-down_payment": ""}

    six = act(client, case, "plans", plan_form(**weekly, **{"plan-count": "6"}))
    past_the_date = act(client, case, "plans", plan_form(**{"plan-down_payment": ""}))

    assert six.status_code == 422
    assert "the accepted settlement allows at most 3 payment(s)" in six.get_data(as_text=True)
    assert past_the_date.status_code == 422
    assert (
        "the accepted settlement must be paid by 2027-01-20; this schedule&#39;s last payment "
        "would be on 2027-02-01" in past_the_date.get_data(as_text=True)
    )
    assert db_session.scalar(sa.select(PaymentPlan)) is None
    assert case.status == "active"

    ok = act(client, case, "plans", plan_form(**weekly))

    assert ok.status_code == 302
    plan = db_session.scalar(sa.select(PaymentPlan))
    assert (plan.total_cents, len(plan.installments)) == (80_000, 3)


def test_charge_due_without_stripe_runs_when_nothing_is_due(app, cli):
    assert app.extensions.get("recourse.gateway") is None
    result = cli.invoke(args=["plans", "charge-due", "--as-of", "2026-11-23", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "as_of": "2026-11-23",
        "charged": 0,
        "failed": 0,
        "needs_authentication": 0,
        "pending": 0,
        "broken": 0,
    }
