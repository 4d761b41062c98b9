"""A dispute hold pauses a payment plan and never breaks it: installments due during the hold
are not missed; when the hold ends the rest of the schedule moves so that nothing is due in the
past, and the debtor confirms the new dates, or the plan lapses (not broken) and the case goes
back to `active`."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.case import change_status
from cases.disputes import record_dispute, send_verification
from cases.plans import (
    LAPSE_REASON,
    RECONFIRM_DAYS,
    PaymentPlan,
    PlanError,
    active_plan,
    confirm_new_dates,
    create_plan,
    lapse_plan,
    overdue_plans,
    unconfirmed_plans,
)
from tests.conftest import TEST_ACTOR

TODAY = dt.date(2026, 11, 23)


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture
def planned(db_session, make_client, make_case):
    """A case on a plan (4 monthly installments of $250 from today), inside its validation
    period, so that a dispute holds it."""

    def make(frequency="monthly", count=4, first_on=TODAY):
        case = make_case(make_client(), principal=100_000, status="active")
        case.validation_period_ends_on = day(20)
        plan = create_plan(
            db_session,
            case,
            frequency=frequency,
            count=count,
            first_on=first_on,
            today=TODAY,
            actor=TEST_ACTOR,
        )
        return case, plan

    return make


def dispute(db_session, case, on: dt.date):
    return record_dispute(
        db_session,
        case,
        reason="not my debt",
        channel="call",
        received_at=dt.datetime.combine(on, dt.time(15), dt.UTC),
        actor=TEST_ACTOR,
    )


def verify(db_session, case, on: dt.date):
    send_verification(db_session, case, document_id=None, actor=TEST_ACTOR, on_local=on)


def actions(db_session, case) -> list[str]:
    return db_session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
    ).all()


def test_a_hold_pauses_the_plan_and_a_paused_plan_is_never_overdue(db_session, planned):
    case, plan = planned()

    dispute(db_session, case, TODAY)

    assert (case.status, plan.status, plan.reconfirm_by) == ("disputed", "paused", None)
    assert plan.on_hold and not plan.awaiting_confirmation
    assert active_plan(db_session, case.id) is plan  # still the plan in force
    assert overdue_plans(db_session, day(40)) == []  # installments long past: not broken
    assert {i.status for i in plan.installments} == {"scheduled"}
    [paused] = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.paused")
    ).all()
    assert (paused.case_id, paused.reason) == (case.id, "dispute hold")


def test_a_dispute_outside_the_validation_period_flags_and_pauses_nothing(db_session, planned):
    case, plan = planned()
    case.validation_period_ends_on = TODAY - dt.timedelta(days=1)

    dispute(db_session, case, TODAY)

    assert (case.status, plan.status) == ("plan", "active")


def test_the_end_of_the_hold_moves_the_rest_and_asks_for_confirmation(db_session, planned):
    case, plan = planned()  # due 11-23, 12-23, 01-23, 02-23
    dispute(db_session, case, day(-1))

    verify(db_session, case, dt.date(2026, 12, 30))  # two installments fell due meanwhile

    deadline = dt.date(2026, 12, 30) + dt.timedelta(days=RECONFIRM_DAYS)
    assert (case.status, plan.status, plan.reconfirm_by) == ("plan", "paused", deadline)
    assert plan.awaiting_confirmation
    # Nothing due in the past, nothing before the debtor could confirm, the monthly rhythm kept.
    assert [i.due_on for i in plan.installments] == [
        dt.date(2027, 1, 9),
        dt.date(2027, 2, 9),
        dt.date(2027, 3, 9),
        dt.date(2027, 4, 9),
    ]
    assert {i.status for i in plan.installments} == {"scheduled"}
    [moved] = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.rescheduled")
    ).all()
    assert moved.detail["confirm_by"] == "2027-01-09"
    assert moved.detail["moved"][0] == {"seq": 1, "from": "2026-11-23", "to": "2027-01-09"}
    reasons = db_session.scalars(
        sa.select(AuditEvent.reason)
        .where(AuditEvent.action == "case.status_changed")
        .order_by(AuditEvent.id)
    ).all()
    assert reasons[-2:] == ["verification sent", f"payment plan {plan.id} resumes after the hold"]


def test_only_unpaid_installments_move_and_keep_their_spacing(db_session, planned):
    case, plan = planned(frequency="weekly", count=4)  # 11-23, 11-30, 12-07, 12-14
    plan.installments[0].status = "paid"
    plan.installments[1].status = "failed"  # declined before the hold, waiting for its retry
    plan.installments[1].next_attempt_on = day(10)
    plan.installments[1].last_error = "card_declined"
    dispute(db_session, case, day(8))

    verify(db_session, case, day(12))

    first = day(12 + RECONFIRM_DAYS)
    assert [(i.due_on, i.status) for i in plan.installments] == [
        (TODAY, "paid"),
        (first, "scheduled"),
        (first + dt.timedelta(weeks=1), "scheduled"),
        (first + dt.timedelta(weeks=2), "scheduled"),
    ]
    assert plan.installments[1].last_error is None
    assert plan.installments[1].next_attempt_on is None


def test_a_hold_with_nothing_due_during_it_resumes_the_plan_at_once(db_session, planned):
    case, plan = planned(first_on=day(20))
    dates = [i.due_on for i in plan.installments]
    dispute(db_session, case, TODAY)

    verify(db_session, case, day(5))

    assert (case.status, plan.status, plan.reconfirm_by) == ("plan", "active", None)
    assert [i.due_on for i in plan.installments] == dates  # the dates the debtor agreed to
    assert "plan.resumed" in actions(db_session, case)
    assert "plan.rescheduled" not in actions(db_session, case)


def test_the_debtor_confirms_the_new_dates_by_the_deadline(db_session, planned):
    case, plan = planned()
    dispute(db_session, case, TODAY)
    verify(db_session, case, day(5))
    too_late = plan.reconfirm_by + dt.timedelta(days=1)
    with pytest.raises(PlanError, match="time to confirm the new dates has passed"):
        confirm_new_dates(db_session, plan, text="I agree.", today=too_late, actor=TEST_ACTOR)

    confirm_new_dates(
        db_session,
        plan,
        text="I agree to the new dates.",
        today=plan.reconfirm_by,
        actor=TEST_ACTOR,
    )

    assert (plan.status, plan.reconfirm_by, case.status) == ("active", None, "plan")
    assert plan.consent_text == "I agree to the new dates."
    assert actions(db_session, case)[-2:] == ["plan.confirmed", "plan.consented"]
    with pytest.raises(PlanError, match="no new dates to confirm"):
        confirm_new_dates(db_session, plan, text="again", today=day(6), actor=TEST_ACTOR)


def test_dates_cannot_be_confirmed_during_the_hold(db_session, planned):
    case, plan = planned()
    dispute(db_session, case, TODAY)

    with pytest.raises(PlanError, match="no new dates to confirm"):
        confirm_new_dates(db_session, plan, text="I agree.", today=TODAY, actor=TEST_ACTOR)
    assert plan.status == "paused"


def test_not_confirmed_in_time_the_plan_lapses_not_broken(db_session, planned):
    case, plan = planned()
    dispute(db_session, case, TODAY)
    verify(db_session, case, day(5))
    assert unconfirmed_plans(db_session, plan.reconfirm_by) == []  # the last day to confirm

    [found] = unconfirmed_plans(db_session, plan.reconfirm_by + dt.timedelta(days=1))
    lapse_plan(db_session, found, actor=TEST_ACTOR)

    assert (plan.status, case.status) == ("lapsed", "active")
    assert "missed" not in {i.status for i in plan.installments}
    assert "plan.broken" not in actions(db_session, case)
    [lapsed] = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.lapsed")
    ).all()
    assert lapsed.reason == LAPSE_REASON == "not re-confirmed after the dispute hold"
    assert case.takes_plan  # the collector can agree a new plan


def test_a_new_hold_while_dates_wait_for_confirmation_pauses_again(db_session, planned):
    case, plan = planned()
    dispute(db_session, case, TODAY)
    verify(db_session, case, day(5))
    case.validation_period_ends_on = day(30)

    dispute(db_session, case, day(8))

    assert (case.status, plan.status, plan.reconfirm_by) == ("disputed", "paused", None)
    assert unconfirmed_plans(db_session, day(60)) == []
    verify(db_session, case, day(50))
    assert plan.reconfirm_by == day(50 + RECONFIRM_DAYS)
    assert plan.installments[0].due_on == day(50 + RECONFIRM_DAYS)


def test_a_case_closed_during_the_hold_cancels_its_paused_plan(db_session, planned):
    case, plan = planned()
    dispute(db_session, case, TODAY)

    change_status(
        db_session, case, "closed", actor=TEST_ACTOR, reason="recalled", close_reason="recalled"
    )

    assert plan.status == "cancelled"
    assert db_session.scalar(sa.select(PaymentPlan.status).where(PaymentPlan.id == plan.id)) == (
        "cancelled"
    )
