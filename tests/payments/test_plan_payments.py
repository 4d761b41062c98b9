"""Money counts toward a payment plan however it arrives: the installments it covers, in
due-date order, are paid (the portal's card payment, a posted check, autopay), a partial
payment pays none, a bounced check takes its installments back, and a settlement plan counts
money received, not the balance."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.offers import SettlementOffer
from cases.plans import create_plan, overdue_plans, save_card
from payments.posting import post_instrument, reverse_payment
from shell.timezone import agency_today
from tests.conftest import TEST_ACTOR
from tests.payments.test_gateway import VISA, card
from tests.payments.test_portal_pay import (
    card_token,
    confirm,
    intent_id,
    ledger,
    portal_stripe,  # noqa: F401 - a fixture
    start_payment,
)

TODAY = dt.date(2026, 11, 23)


def plan_of(session, case, *, first_on=TODAY, today=TODAY, count=4, autopay=False):
    return create_plan(
        session,
        case,
        frequency="monthly",
        count=count,
        first_on=first_on,
        today=today,
        actor=TEST_ACTOR,
        autopay=autopay,
    )


def statuses(session, plan):
    session.flush()  # what the unit of work changed, then read back
    session.refresh(plan)
    for installment in plan.installments:
        session.refresh(installment)
    return [i.status for i in plan.installments]


def events(session, action, installment):
    return session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == action,
            AuditEvent.entity_type == "installment",
            AuditEvent.entity_id == str(installment.id),
        )
    ).all()


def check(session, case, cents, number, day=TODAY):
    [entry] = post_instrument(
        session, [(case, cents)], method="check", number=number, received_at=day, actor=TEST_ACTOR
    )
    return entry


@pytest.mark.usefixtures("portal_stripe")
def test_paying_the_next_installment_in_the_portal_pays_it_and_the_plan_is_not_broken(
    cli, db_session, signed_in, make_client, make_case, localstripe_url
):
    case = make_case(make_client(), principal=100_000, status="active")
    today = agency_today()
    plan = plan_of(db_session, case, first_on=today, today=today)
    db_session.commit()
    client = signed_in(case)

    page = start_payment(client, case, "250.00")  # Pay now's amount: the next installment
    intent = intent_id(page.get_data(as_text=True))
    answer = confirm(client, intent, card_token(localstripe_url, "4242424242424242"))
    assert answer.status_code == 200 and answer.json["status"] == "succeeded"
    assert client.get(f"/portal/payments/{intent}").status_code == 302

    [payment] = ledger(db_session, case)
    assert payment.amount_cents == -25_000
    assert statuses(db_session, plan) == ["paid", "scheduled", "scheduled", "scheduled"]
    [covered] = events(db_session, "installment.covered", plan.installments[0])
    assert covered.detail["received_cents"] == 25_000

    # Ten days after its date the daily run breaks nothing: the installment was paid.
    later = plan.installments[0].due_on + dt.timedelta(days=10)
    assert overdue_plans(db_session, later) == []
    result = cli.invoke(args=["plans", "charge-due", "--as-of", later.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["broken"] == 0
    db_session.refresh(plan)
    db_session.refresh(case)
    assert (plan.status, case.status) == ("active", "plan")


def test_a_check_covering_two_installments_pays_both(db_session, make_client, make_case):
    case = make_case(make_client(), principal=100_000, status="active")
    plan = plan_of(db_session, case)

    check(db_session, case, 50_000, "1001")

    assert statuses(db_session, plan) == ["paid", "paid", "scheduled", "scheduled"]
    assert all(
        len(events(db_session, "installment.covered", i)) == 1 for i in plan.installments[:2]
    )
    assert (plan.status, case.status) == ("active", "plan")


def test_a_partial_payment_pays_no_installment_until_the_money_covers_one(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=100_000, status="active")
    plan = plan_of(db_session, case)

    check(db_session, case, 24_999, "1001")
    assert statuses(db_session, plan) == ["scheduled"] * 4
    assert events(db_session, "installment.covered", plan.installments[0]) == []

    check(db_session, case, 1, "1002")  # with the first, $250 received: the first is paid
    assert statuses(db_session, plan) == ["paid", "scheduled", "scheduled", "scheduled"]


def test_a_bounced_check_takes_back_the_installments_it_no_longer_covers(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=100_000, status="active")
    plan = plan_of(db_session, case)
    first = check(db_session, case, 25_000, "1001")
    second = check(db_session, case, 25_000, "1002")
    assert statuses(db_session, plan) == ["paid", "paid", "scheduled", "scheduled"]

    reverse_payment(
        db_session,
        first,
        amount_cents=None,
        external_id="bounce-1001",
        received_at=TODAY,
        reason="check returned NSF",
        actor=TEST_ACTOR,
        today=TODAY,
    )

    # $250 is left of $500: the first installment (due first) stays paid, the second is not.
    assert statuses(db_session, plan) == ["paid", "scheduled", "scheduled", "scheduled"]
    assert plan.installments[1].paid_at is None
    [uncovered] = events(db_session, "installment.uncovered", plan.installments[1])
    assert uncovered.detail["received_cents"] == 25_000
    assert second.case_id == case.id
    # Overdue again once past its date (the money does not cover it).
    later = plan.installments[1].due_on + dt.timedelta(days=10)
    assert overdue_plans(db_session, later) == [plan]


@pytest.mark.usefixtures("portal_stripe")
def test_autopay_marks_its_installment_paid_exactly_once(
    cli, db_session, make_client, make_case, gateway, stripe_api
):
    client = make_client(code=f"C{uuid.uuid4().hex[:6].upper()}")
    case = make_case(client, principal=100_000, status="active")
    case.reference = f"RC-T{uuid.uuid4().hex[:12].upper()}"
    plan = plan_of(db_session, case, autopay=True)
    customer = gateway.ensure_customer(
        debtor_id=uuid.uuid4().int % 10**9, name="Maria Garcia", email=None
    )
    save_card(
        db_session,
        plan,
        customer_id=customer,
        payment_method_id=card(stripe_api, VISA, customer),
        actor=TEST_ACTOR,
    )
    db_session.commit()

    result = cli.invoke(args=["plans", "charge-due", "--as-of", TODAY.isoformat()])
    assert result.exit_code == 0, result.output

    assert statuses(db_session, plan) == ["paid", "scheduled", "scheduled", "scheduled"]
    first = plan.installments[0]
    assert len(events(db_session, "installment.paid", first)) == 1  # autopay's own
    assert events(db_session, "installment.covered", first) == []
    assert [e.amount_cents for e in ledger(db_session, case)] == [-25_000]


def test_a_settlement_plan_counts_money_received_not_the_balance(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=100_000, status="active")
    db_session.add(
        SettlementOffer(
            case_id=case.id,
            amount_cents=60_000,
            balance_cents=100_000,
            expires_on=TODAY + dt.timedelta(days=30),
            max_installments=3,
            status="accepted",
        )
    )
    db_session.flush()
    plan = create_plan(
        db_session,
        case,
        frequency="biweekly",
        count=3,
        first_on=TODAY,
        today=TODAY,
        actor=TEST_ACTOR,
    )
    assert [i.amount_cents for i in plan.installments] == [20_000] * 3

    check(db_session, case, 20_000, "1001")
    # $800 is still owed, but $200 was received: one installment, not none.
    assert statuses(db_session, plan) == ["paid", "scheduled", "scheduled"]

    check(db_session, case, 40_000, "1002")
    assert statuses(db_session, plan) == ["paid", "paid", "paid"]
    db_session.refresh(case)
    assert (plan.status, case.status) == ("completed", "settled")
