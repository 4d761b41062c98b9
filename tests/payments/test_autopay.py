"""Autopay against a real local Stripe (localstripe): `plans charge-due` charges each due
installment once, however often it runs and wherever it is interrupted."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.disputes import record_dispute
from cases.messages import OutboundMessage
from cases.plans import Installment, PaymentPlan, break_plan, create_plan, save_card
from payments.autopay import charge_due
from payments.posting import LedgerEntry, post_payment
from tests.conftest import TEST_ACTOR, drain_jobs
from tests.payments.test_gateway import DECLINED, NEEDS_3DS, VISA, card
from tests.payments.test_portal_pay import portal_stripe  # noqa: F401 - a fixture

TODAY = dt.date(2026, 11, 23)
pytestmark = pytest.mark.usefixtures("portal_stripe")  # the app charges through localstripe


@pytest.fixture
def autopay_case(db_session, make_client, make_case, gateway, stripe_api):
    """An active case on a monthly autopay plan of 4 x $250, the first due today, with a card
    saved at localstripe. Its reference is unique: localstripe outlives each test."""

    def make(number=VISA, count=4, principal=100_000):
        client = make_client(code=f"C{uuid.uuid4().hex[:6].upper()}")
        case = make_case(client, principal=principal, status="active")
        case.reference = f"RC-T{uuid.uuid4().hex[:12].upper()}"
        plan = create_plan(
            db_session,
            case,
            frequency="monthly",
            count=count,
            first_on=TODAY,
            today=TODAY,
            actor=TEST_ACTOR,
            autopay=True,
        )
        customer = gateway.ensure_customer(
            debtor_id=uuid.uuid4().int % 10**9, name="Maria Garcia", email=None
        )
        save_card(
            db_session,
            plan,
            customer_id=customer,
            payment_method_id=card(stripe_api, number, customer),
            actor=TEST_ACTOR,
        )
        db_session.commit()
        return case, plan

    return make


def payments(session, case):
    return session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id, LedgerEntry.kind == "payment")
    ).all()


def charge(cli, day: dt.date, *extra):
    result = cli.invoke(args=["plans", "charge-due", "--as-of", day.isoformat(), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_charge_due_charges_the_installment_due_and_posts_it(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case()

    output = charge(cli, TODAY)

    assert "1 charged, 0 failed, 0 need authentication, 0 plan(s) broken" in output
    first = plan.installments[0]
    db_session.refresh(first)
    assert (first.status, first.attempts) == ("paid", 1)
    intents = gateway.find_payment_intents(
        case_reference=case.reference, idempotency_key=f"installment-{first.id}-attempt-1"
    )
    assert [i.status for i in intents] == ["succeeded"]
    assert intents[0].metadata["installment_id"] == str(first.id)
    [entry] = payments(db_session, case)
    assert (entry.amount_cents, entry.external_id) == (-25_000, intents[0].id)
    assert [i.status for i in plan.installments[1:]] == ["scheduled"] * 3


def test_running_twice_charges_each_installment_once(cli, db_session, autopay_case, gateway):
    case, plan = autopay_case()

    charge(cli, TODAY)
    second = json.loads(charge(cli, TODAY, "--json"))

    assert second["charged"] == 0
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1
    assert len(payments(db_session, case)) == 1


def test_a_run_killed_between_the_charge_and_the_commit_never_charges_again(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case()
    first_id = plan.installments[0].id

    class Killed(Exception):
        pass

    def kill(intent):
        raise Killed(intent.id)

    with pytest.raises(Killed):
        charge_due(db_session, gateway, today=TODAY, zone=dt.UTC, after_charge=kill)
    db_session.rollback()  # the worker died: its last transaction never committed

    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1  # charged
    assert payments(db_session, case) == []  # but not recorded
    first = db_session.get(type(plan.installments[0]), first_id)
    assert (first.status, first.attempts) == ("processing", 1)  # the attempt was on record
    output = charge(cli, TODAY)

    assert "1 charged" in output
    intents = gateway.find_payment_intents(case_reference=case.reference)
    assert len(intents) == 1
    [entry] = payments(db_session, case)
    assert entry.external_id == intents[0].id
    first = db_session.get(type(plan.installments[0]), first_id)
    assert (first.status, first.attempts) == ("paid", 1)


def test_an_interrupted_charge_is_reconciled_even_after_its_plan_broke(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case()
    first_id, second_id = plan.installments[0].id, plan.installments[1].id

    class Killed(Exception):
        pass

    def kill(intent):
        raise Killed(intent.id)

    with pytest.raises(Killed):
        charge_due(db_session, gateway, today=TODAY, zone=dt.UTC, after_charge=kill)
    db_session.rollback()  # charged at Stripe, not recorded here
    # The second installment's attempt was on record when its worker died before calling Stripe.
    second = db_session.get(Installment, second_id)
    second.status, second.attempts = "processing", 1
    break_plan(db_session, db_session.get(PaymentPlan, plan.id), actor=TEST_ACTOR, reason="test")
    db_session.commit()

    output = json.loads(charge(cli, TODAY, "--json"))

    assert (output["charged"], output["failed"]) == (1, 1)
    [intent] = gateway.find_payment_intents(case_reference=case.reference)  # nothing new charged
    [entry] = payments(db_session, case)
    assert entry.external_id == intent.id  # the charge Stripe took is on the ledger, once
    db_session.expire_all()
    assert db_session.get(Installment, first_id).status == "paid"
    assert db_session.get(Installment, second_id).status == "missed"
    assert db_session.get(PaymentPlan, plan.id).status == "broken"
    assert json.loads(charge(cli, TODAY, "--json"))["charged"] == 0


def test_paying_every_installment_completes_the_plan(cli, db_session, autopay_case, gateway):
    case, plan = autopay_case(count=2, principal=60_000)

    charge(cli, TODAY)
    charge(cli, TODAY + dt.timedelta(days=30))

    db_session.refresh(plan)
    assert plan.status == "completed"
    assert [i.status for i in plan.installments] == ["paid", "paid"]
    assert case.status == "paid"
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 2


def test_a_case_paid_off_another_way_completes_its_plan_and_nothing_more_is_charged(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case(principal=100_000)
    charge(cli, TODAY)  # the first $250 by autopay
    # The debtor pays the rest by check: it covers the installments left, so the plan is
    # completed (not merely cancelled by the case being paid).
    post_payment(
        db_session,
        case,
        75_000,
        external_id=f"check-{case.reference}",
        received_at=TODAY,
        method="check",
        actor=TEST_ACTOR,
    )
    db_session.commit()
    db_session.refresh(plan)
    assert (case.status, plan.status) == ("paid", "completed")
    assert [i.status for i in plan.installments] == ["paid"] * 4

    output = json.loads(charge(cli, TODAY + dt.timedelta(days=31), "--json"))

    assert output["charged"] == 0
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1


def test_a_case_held_by_a_dispute_is_not_charged(cli, db_session, autopay_case, gateway):
    case, plan = autopay_case()
    case.validation_period_ends_on = TODAY + dt.timedelta(days=20)
    record_dispute(
        db_session,
        case,
        reason="not my debt",
        channel="call",
        received_at=dt.datetime(2026, 11, 22, 15, tzinfo=dt.UTC),
        actor=TEST_ACTOR,
    )
    db_session.commit()
    assert case.status == "disputed"

    assert json.loads(charge(cli, TODAY, "--json"))["charged"] == 0
    assert gateway.find_payment_intents(case_reference=case.reference) == []


def test_a_declined_card_is_retried_after_three_days_then_the_plan_breaks(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case(number=DECLINED)
    first = plan.installments[0]

    assert "0 charged, 1 failed" in charge(cli, TODAY)
    db_session.refresh(first)
    assert (first.status, first.last_error) == ("failed", "card_declined")
    assert first.next_attempt_on == TODAY + dt.timedelta(days=3)

    assert "0 charged, 0 failed" in charge(cli, TODAY + dt.timedelta(days=2))  # not yet
    assert "1 failed" in charge(cli, TODAY + dt.timedelta(days=3))
    db_session.refresh(first)
    assert first.attempts == 2
    keys = sorted(
        i.metadata["idempotency_key"]
        for i in gateway.find_payment_intents(case_reference=case.reference)
    )
    assert keys == [f"installment-{first.id}-attempt-1", f"installment-{first.id}-attempt-2"]

    assert "1 plan(s) broken" in charge(cli, TODAY + dt.timedelta(days=10))
    db_session.refresh(plan)
    db_session.refresh(case)
    assert plan.status == "broken"
    assert case.status == "active"
    assert first.status == "missed"
    assert payments(db_session, case) == []
    events = db_session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.case_id == case.id)
    ).all()
    assert "plan.broken" in events
    assert events.count("installment.failed") >= 2


def test_a_card_that_needs_authentication_asks_the_debtor_by_email(
    app, cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case(number=NEEDS_3DS)
    first = plan.installments[0]

    with time_machine.travel(dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)):  # 10 a.m. NY
        assert "1 need authentication" in charge(cli, TODAY)
        drain_jobs(app)  # with Redis, the email is a job on the mail queue

    db_session.refresh(first)
    assert first.needs_authentication
    assert first.payment_intent_id.startswith("pi_")
    assert first.next_attempt_on is None
    [message] = db_session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.case_id == case.id)
    ).all()
    assert f"/portal/installments/{first.id}/authenticate" in message.body
    assert "$250.00" in message.subject
    assert "0 charged, 0 failed, 0 need" in charge(cli, TODAY)  # not charged again


def test_the_daily_job_charges_what_is_due(app, db_session, autopay_case, gateway):
    from shell.autopay_cli import charge_due_job

    case, plan = autopay_case()
    run = charge_due_job(db_session, TODAY.isoformat())

    assert (run.charged, run.failed) == ([plan.installments[0].id], [])
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1


def test_the_daily_job_is_on_the_cron_scheduler(app, redis_url):
    if not redis_url:
        pytest.skip("needs Redis (TEST_REDIS_URL)")
    from redis import Redis
    from rq.cron import CronScheduler

    from shell.autopay_cli import CHARGE_DUE, SCHEDULE, register_cron

    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    register_cron(scheduler)
    [job] = scheduler.get_jobs()
    assert (job.args, job.cron, job.queue_name) == ((CHARGE_DUE.name,), SCHEDULE, "payments")


def test_workers_out_of_range_are_refused_and_nothing_is_charged(cli, db_session, autopay_case):
    case, plan = autopay_case()

    result = cli.invoke(
        args=["plans", "charge-due", "--as-of", TODAY.isoformat(), "--workers", "0"]
    )

    assert result.exit_code == 2
    assert "--workers" in result.output and "0 is not in the range 1<=x<=6" in result.output
    db_session.refresh(plan.installments[0])
    assert plan.installments[0].status == "scheduled"
