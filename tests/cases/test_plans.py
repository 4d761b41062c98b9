"""Payment plans: the schedule adds up exactly, inside the client's bounds; a plan puts the
case in `plan`, and a broken one takes it back to `active`."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.offers import SettlementOffer
from cases.plans import (
    PaymentPlan,
    PlanError,
    break_plan,
    build_schedule,
    create_plan,
    max_installments,
    record_consent,
)
from tests.conftest import TEST_ACTOR

TODAY = dt.date(2026, 11, 23)


def schedule(**overrides):
    args = dict(
        total_cents=100_000,
        frequency="monthly",
        count=3,
        first_on=TODAY,
        today=TODAY,
        max_plan_months=12,
    )
    args.update(overrides)
    return build_schedule(**args)


def test_the_last_installment_takes_the_rounding():
    payments = schedule()
    assert [p.amount_cents for p in payments] == [33_333, 33_333, 33_334]
    assert sum(p.amount_cents for p in payments) == 100_000
    assert [p.due_on for p in payments] == [
        TODAY,
        dt.date(2026, 12, 23),
        dt.date(2027, 1, 23),
    ]


def test_a_down_payment_comes_first_then_the_installments():
    payments = schedule(down_payment_cents=10_000, frequency="biweekly", count=4)
    assert [(p.seq, p.amount_cents) for p in payments] == [
        (1, 10_000),
        (2, 22_500),
        (3, 22_500),
        (4, 22_500),
        (5, 22_500),
    ]
    assert payments[1].due_on == TODAY + dt.timedelta(weeks=2)
    assert sum(p.amount_cents for p in payments) == 100_000


def test_monthly_dates_keep_to_the_end_of_short_months():
    payments = schedule(first_on=dt.date(2026, 12, 31), today=dt.date(2026, 12, 20))
    assert [p.due_on for p in payments] == [
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 31),
        dt.date(2027, 2, 28),
    ]


def test_how_many_installments_fit_in_the_clients_months():
    assert max_installments("monthly", 12) == 12
    assert max_installments("biweekly", 12) == 26
    assert max_installments("weekly", 6) == 26


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"count": 13}, "at most 12 monthly installments"),
        ({"count": 27, "frequency": "weekly", "max_plan_months": 6}, "at most 26 weekly"),
        ({"count": 41, "total_cents": 100_000, "frequency": "weekly"}, "at least $25.00"),
        ({"first_on": TODAY + dt.timedelta(days=31)}, "within 30 days"),
        ({"first_on": TODAY - dt.timedelta(days=1)}, "in the past"),
        ({"down_payment_cents": 1_000}, "down payment must be at least $25.00"),
        ({"down_payment_cents": 100_000}, "less than the amount"),
        ({"frequency": "daily"}, "frequency must be one of"),
        ({"count": 0}, "at least one installment"),
        ({"total_cents": 0}, "nothing to pay"),
    ],
)
def test_schedules_outside_the_bounds_are_refused(overrides, message):
    with pytest.raises(PlanError, match=message.replace("$", r"\$")):
        schedule(**overrides)


def test_creating_a_plan_puts_the_case_in_plan_and_audits_it(db_session, make_client, make_case):
    case = make_case(make_client(), principal=90_000, status="active")

    plan = create_plan(
        db_session,
        case,
        frequency="monthly",
        count=3,
        first_on=TODAY + dt.timedelta(days=7),
        today=TODAY,
        actor=TEST_ACTOR,
    )

    assert case.status == "plan"
    assert plan.total_cents == 90_000
    assert [i.amount_cents for i in plan.installments] == [30_000] * 3
    actions = db_session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.case_id == case.id)
    ).all()
    assert "plan.created" in actions and "case.status_changed" in actions


def test_a_plan_on_an_accepted_settlement_pays_its_amount(db_session, make_client, make_case):
    case = make_case(make_client(), principal=100_000, status="active")
    db_session.add(
        SettlementOffer(
            case_id=case.id,
            amount_cents=80_000,
            balance_cents=100_000,
            expires_on=TODAY + dt.timedelta(days=21),
            max_installments=4,
            status="accepted",
        )
    )
    db_session.flush()

    with pytest.raises(PlanError, match="at most 4 payment"):
        create_plan(
            db_session,
            case,
            frequency="weekly",
            count=5,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
        )
    with pytest.raises(PlanError, match="at most 4 payment"):  # the down payment is one of them
        create_plan(
            db_session,
            case,
            frequency="weekly",
            count=4,
            down_payment_cents=5_000,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
        )
    # Payments after the offer's date do not count toward it: the schedule must end by then.
    with pytest.raises(PlanError, match="must be paid by 2026-12-14; .* on 2027-02-23"):
        create_plan(
            db_session,
            case,
            frequency="monthly",
            count=4,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
        )
    assert db_session.scalar(sa.select(sa.func.count(PaymentPlan.id))) == 0
    assert case.status == "active"
    plan = create_plan(
        db_session,
        case,
        frequency="weekly",
        count=4,
        first_on=TODAY,
        today=TODAY,
        actor=TEST_ACTOR,
    )
    assert plan.total_cents == 80_000 and plan.offer_id is not None
    assert plan.installments[-1].due_on == TODAY + dt.timedelta(days=21)


def test_a_plan_on_a_settlement_partly_paid_pays_only_the_rest(db_session, make_client, make_case):
    from payments.posting import post_payment

    case = make_case(make_client(), principal=100_000, status="active")
    offer = SettlementOffer(
        case_id=case.id,
        amount_cents=80_000,
        balance_cents=100_000,
        expires_on=TODAY + dt.timedelta(days=21),
        max_installments=4,
        status="accepted",
    )
    db_session.add(offer)
    db_session.flush()
    post_payment(
        db_session,
        case,
        20_000,
        external_id="check-1001",
        received_at=TODAY,
        method="check",
        actor=TEST_ACTOR,
    )

    plan = create_plan(
        db_session,
        case,
        frequency="weekly",
        count=3,
        first_on=TODAY + dt.timedelta(days=1),
        today=TODAY,
        actor=TEST_ACTOR,
    )

    assert plan.total_cents == 60_000  # $800 agreed, $200 already paid toward it
    assert [i.amount_cents for i in plan.installments] == [20_000] * 3


@pytest.mark.parametrize("status", ["new", "disputed", "paid"])
def test_only_an_active_case_takes_a_plan(db_session, make_client, make_case, status):
    case = make_case(make_client(), status=status)
    with pytest.raises(PlanError, match=f"a {status} case cannot take a payment plan"):
        create_plan(
            db_session,
            case,
            frequency="monthly",
            count=3,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
        )
    assert db_session.scalar(sa.select(sa.func.count(PaymentPlan.id))) == 0


def test_one_plan_at_a_time(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    create_plan(
        db_session,
        case,
        frequency="monthly",
        count=3,
        first_on=TODAY,
        today=TODAY,
        actor=TEST_ACTOR,
    )
    case.status = "active"
    with pytest.raises(PlanError, match="already has a payment plan"):
        create_plan(
            db_session,
            case,
            frequency="monthly",
            count=3,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
        )


def test_consent_keeps_the_wording_and_time(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    plan = create_plan(
        db_session,
        case,
        frequency="weekly",
        count=4,
        first_on=TODAY,
        today=TODAY,
        actor=TEST_ACTOR,
    )
    at = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    record_consent(db_session, plan, text="I authorise the charges.", actor=TEST_ACTOR, at=at)
    assert (plan.consent_text, plan.consented_at) == ("I authorise the charges.", at)


def test_a_broken_plan_returns_the_case_to_active(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    plan = create_plan(
        db_session,
        case,
        frequency="monthly",
        count=3,
        first_on=TODAY,
        today=TODAY,
        actor=TEST_ACTOR,
    )
    break_plan(db_session, plan, actor=TEST_ACTOR, reason="missed")
    assert (plan.status, case.status) == ("broken", "active")
    assert {i.status for i in plan.installments} == {"missed"}
