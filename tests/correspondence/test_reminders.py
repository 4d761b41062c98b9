"""Promises kept and broken; reminders by email and text, once, inside the debtor's hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.contacts import Contact
from cases.messages import OutboundMessage
from cases.plans import Installment, PaymentPlan, PromiseToPay, record_promise
from cases.queue import queue_for
from cases.reminders import SentReminder
from payments.posting import post_payment
from tests.conftest import TEST_ACTOR, drain_jobs

NY = ZoneInfo("America/New_York")
JOB_NAME = "reminders.send_due"
RECORDED_ON = dt.date(2026, 11, 23)  # the suite's day
DUE_ON = dt.date(2026, 11, 30)


@pytest.fixture
def promised(db_session, make_client, make_case):
    """An active case whose debtor consented to texts, with a $150 promise due Nov 30."""
    case = make_case(make_client(), status="active", principal=45_000)
    case.debtor.phones[0].text_consent = True
    promise = record_promise(
        db_session, case, amount_cents=15_000, due_on=DUE_ON, today=RECORDED_ON, actor=TEST_ACTOR
    )
    db_session.flush()
    return case, promise


def at(day: int, hour: int, month: int = 11):
    return time_machine.travel(dt.datetime(2026, month, day, hour, 0, tzinfo=NY), tick=False)


def run(app, cli, *args):
    result = cli.invoke(args=["reminders", "send", *args])
    assert result.exit_code == 0, result.output
    drain_jobs(app)
    return result.output


def test_a_reminder_goes_out_3_days_before_by_email_and_text_once(
    app, cli, db_session, promised, smtp_server, sms_server
):
    case, promise = promised
    with at(26, 10):  # 4 days before: nothing yet
        run(app, cli)
    assert smtp_server.messages == [] and sms_server.messages == []
    with at(27, 10):
        output = run(app, cli)
    assert "2 reminder(s) sent" in output
    [mail] = smtp_server.messages
    assert mail["To"] == "maria@example.com"
    assert mail["Subject"] == "Reminder: your payment of $150.00 is due on 2026-11-30"
    text = mail.get_content()
    assert "This is a communication from a debt collector." in text
    assert case.reference in text
    assert "To stop receiving emails from us" in text
    [sms] = sms_server.messages
    assert sms["to"] == "+12125550100"
    assert sms["authorization"] == "Bearer test-sms-key"
    assert "a debt collector" in sms["body"]
    assert "$150.00" in sms["body"] and "2026-11-30" in sms["body"]
    assert sms["body"].endswith("Reply STOP to opt out.")

    outbox = db_session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)).all()
    for message in outbox:
        db_session.refresh(message)
    assert [(m.channel, m.status) for m in outbox] == [("email", "sent"), ("text", "sent")]
    assert outbox[1].provider_id == "sms-1"
    contacts = db_session.scalars(sa.select(Contact).where(Contact.case_id == case.id)).all()
    assert sorted((c.channel, c.direction, c.target) for c in contacts) == [
        ("email", "outbound", "maria@example.com"),
        ("text", "outbound", "+12125550100"),
    ]
    assert all(c.violations == [] for c in contacts)

    # The job runs every hour: the same reminder is never sent twice.
    with at(27, 11):
        assert "0 reminder(s) sent" in run(app, cli)
    with at(28, 10):
        run(app, cli)
    assert len(smtp_server.messages) == 1 and len(sms_server.messages) == 1
    keys = db_session.scalars(sa.select(SentReminder.key)).all()
    assert sorted(keys) == [f"promise_due:{promise.id}:email", f"promise_due:{promise.id}:text"]


def test_held_back_at_22_00_the_debtors_time_and_sent_at_10_00(
    app, cli, promised, smtp_server, sms_server
):
    with at(27, 22):
        output = run(app, cli)
    assert "0 reminder(s) sent, 2 held back" in output
    assert "allowed 08:00–21:00" in output
    assert smtp_server.messages == [] and sms_server.messages == []
    with at(28, 10):
        assert "2 reminder(s) sent" in run(app, cli)
    assert len(smtp_server.messages) == 1 and len(sms_server.messages) == 1


def test_no_email_after_an_email_opt_out_but_a_text_still_goes(
    app, cli, promised, smtp_server, sms_server
):
    case, _ = promised
    case.debtor.emails[0].opted_out_at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    with at(27, 10):
        run(app, cli)
    assert smtp_server.messages == []
    assert len(sms_server.messages) == 1


def test_no_text_without_consent_or_after_a_text_opt_out(
    app, cli, promised, smtp_server, sms_server
):
    case, _ = promised
    case.debtor.phones[0].texts_opted_out_at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    with at(27, 10):
        run(app, cli)
    assert sms_server.messages == []
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("why", ["cease", "dispute_hold", "attorney"])
def test_nothing_is_sent_after_a_cease_during_a_dispute_or_to_a_represented_debtor(
    app, cli, db_session, promised, smtp_server, sms_server, why
):
    case, _ = promised
    if why == "cease":
        case.debtor.cease_requested_at = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    elif why == "attorney":
        case.debtor.attorney_since = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    else:
        case.status = "disputed"
    with at(27, 10):
        output = run(app, cli)
    assert "0 reminder(s) sent, 2 held back" in output
    assert smtp_server.messages == [] and sms_server.messages == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(SentReminder)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_spanish_speaking_debtor_gets_the_reminders_in_spanish(
    app, cli, promised, smtp_server, sms_server
):
    case, _ = promised
    case.debtor.language = "es"
    with at(27, 10):
        run(app, cli)
    [mail] = smtp_server.messages
    assert mail["Subject"] == "Recordatorio: su pago de $150.00 vence el 2026-11-30"
    text = mail.get_content()
    assert "Esta es una comunicación de un cobrador de deudas." in text
    assert "Para dejar de recibir nuestros correos" in text
    [sms] = sms_server.messages
    assert "un cobrador de deudas" in sms["body"]
    assert sms["body"].endswith("Responda STOP para no recibir más mensajes.")


def test_a_promise_is_kept_when_payments_reach_it_by_the_due_date(
    cli, db_session, promised, make_user
):
    case, promise = promised
    post_payment(
        db_session,
        case,
        10_000,
        external_id="chk-1",
        received_at=dt.date(2026, 11, 25),
        today=dt.date(2026, 11, 25),  # posted the day it came
        method="check",
        actor=TEST_ACTOR,
    )
    post_payment(
        db_session,
        case,
        5_000,
        external_id="direct-1",
        received_at=dt.date(2026, 11, 30),
        today=dt.date(2026, 11, 30),  # posted the day it came
        method="ach",
        actor=TEST_ACTOR,
        direct=True,
    )
    with at(26, 10):
        result = cli.invoke(args=["promises", "check"])
    assert result.exit_code == 0, result.output
    assert "0 kept, 0 broken" in result.output  # $100 of $150 so far, not yet due
    result = cli.invoke(args=["promises", "check", "--as-of", "2026-12-01"])
    assert "1 kept, 0 broken" in result.output
    db_session.refresh(promise)
    assert promise.status == "kept"
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "promise.kept"))
    assert (event.case_id, event.detail["paid_cents"]) == (case.id, 15_000)


def test_a_payment_after_the_due_date_does_not_keep_it(cli, db_session, promised):
    case, promise = promised
    post_payment(
        db_session,
        case,
        15_000,
        external_id="late-1",
        received_at=dt.date(2026, 12, 1),
        today=dt.date(2026, 12, 1),  # posted the day it came
        method="check",
        actor=TEST_ACTOR,
    )
    result = cli.invoke(args=["promises", "check", "--as-of", "2026-12-01"])
    assert "0 kept, 1 broken" in result.output
    db_session.refresh(promise)
    assert promise.status == "broken"


def test_a_broken_promise_is_on_the_queue_and_gets_a_reminder_the_day_after(
    app, cli, db_session, promised, make_user, smtp_server, sms_server
):
    case, promise = promised
    collector = make_user("collector")
    case.assigned_to_id = collector.id
    with at(1, 10, month=12):
        output = run(app, cli)
    assert "0 promise(s) kept, 1 broken" in output
    db_session.refresh(promise)
    assert promise.status == "broken"
    assert db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "promise.broken"))
    rows = queue_for(
        db_session,
        collector.id,
        now=dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC),
        today=dt.date(2026, 12, 1),
    )
    assert [(r.case.id, r.reason) for r in rows] == [(case.id, "broken promise or plan")]
    [mail] = smtp_server.messages
    assert mail["Subject"] == "We have not received your payment of $150.00 due on 2026-11-30"
    assert "This is a communication from a debt collector." in mail.get_content()
    [sms] = sms_server.messages
    assert "we have not received your payment" in sms["body"]
    with at(2, 10, month=12):
        run(app, cli)
    assert len(smtp_server.messages) == 1 and len(sms_server.messages) == 1


def test_an_installment_reminder_goes_out_3_days_before(
    app, cli, db_session, make_client, make_case, smtp_server
):
    case = make_case(make_client(), status="plan", principal=45_000, phone=None)
    plan = PaymentPlan(case_id=case.id, total_cents=45_000, frequency="monthly", autopay=True)
    plan.installments = [
        Installment(seq=1, due_on=dt.date(2026, 12, 4), amount_cents=15_000),
        Installment(seq=2, due_on=dt.date(2027, 1, 4), amount_cents=15_000),
    ]
    db_session.add(plan)
    db_session.flush()
    with at(1, 10, month=12):
        run(app, cli)
    [mail] = smtp_server.messages
    assert mail["Subject"] == "Reminder: your installment of $150.00 is due on 2026-12-04"
    text = mail.get_content()
    assert "Installment 1 of your payment plan" in text
    assert "Your saved card will be charged automatically on that day." in text
    assert "To stop receiving emails from us" in text


def test_as_of_names_the_day_to_act_for(app, cli, db_session, promised, smtp_server):
    _, promise = promised
    output = run(app, cli, "--as-of", "2026-12-01")
    assert output.startswith("2026-12-01: 0 promise(s) kept, 1 broken")
    db_session.refresh(promise)
    assert promise.status == "broken"


def test_the_job_function_runs_the_same_as_the_command(app, db_session, promised, smtp_server):
    from correspondence.reminder_run import send_due

    _, promise = promised
    with at(27, 10):
        result = send_due(db_session)
        db_session.commit()
    drain_jobs(app)
    assert sorted(result.sent) == [
        f"promise_due:{promise.id}:email",
        f"promise_due:{promise.id}:text",
    ]
    assert len(smtp_server.messages) == 1
    assert db_session.scalar(sa.select(PromiseToPay.status)) == "open"
    # No text provider is configured here: the text is kept in the outbox as failed, saying why.
    text = db_session.scalar(sa.select(OutboundMessage).where(OutboundMessage.channel == "text"))
    db_session.refresh(text)
    assert (text.status, text.error) == ("failed", "SMS_API_URL is not set")


def test_two_schedulers_enqueue_each_tick_once(app):
    """A standby scheduler (or one started on a second machine by mistake) does not enqueue
    the jobs a second time: each tick is claimed in Redis by the first scheduler to reach it,
    and the other one enqueues a tick when it is alone."""
    from rq import Queue

    from shell.job_runner import RQRunner
    from shell.reminders_cli import cron_scheduler

    runner = app.extensions["recourse.jobs"]
    if not isinstance(runner, RQRunner):
        pytest.skip("needs TEST_REDIS_URL")
    first, second = cron_scheduler(runner.connection), cron_scheduler(runner.connection)
    default = Queue("default", connection=runner.connection)

    def tick_arrives(hour, *schedulers):  # the day before the suite's day
        for scheduler in schedulers:
            for job in scheduler.get_jobs():  # both jobs (reminders, sweep) are due at this tick
                job.next_enqueue_time = dt.datetime(2026, 11, 22, hour, 5, tzinfo=dt.UTC)

    tick_arrives(10, first, second)
    assert [job.name for job in first.enqueue_jobs()] == ["reminders", "jobs-sweep"]
    assert second.enqueue_jobs() == []  # the same ticks: claimed already
    assert default.count == 2
    tick_arrives(11, second, first)  # the next hour the second one gets there first
    assert [job.name for job in second.enqueue_jobs()] == ["reminders", "jobs-sweep"]
    assert first.enqueue_jobs() == []
    assert default.count == 4
    tick_arrives(12, second)  # the first has stopped: the second carries on alone
    assert len(second.enqueue_jobs()) == 2
    assert default.count == 6
    for job in first.get_jobs() + second.get_jobs():  # each moved on to its next real tick
        assert job.next_enqueue_time > dt.datetime(2026, 11, 22, 12, 5, tzinfo=dt.UTC)


def test_rq_cron_scheduler_runs_the_reminders_job_on_a_worker(
    app, db_session, promised, smtp_server, sms_server
):
    from shell.job_runner import RQRunner
    from shell.reminders_cli import SCHEDULE, cron_scheduler

    runner = app.extensions["recourse.jobs"]
    if not isinstance(runner, RQRunner):
        pytest.skip("needs TEST_REDIS_URL")
    job, sweep = cron_scheduler(runner.connection).get_jobs()
    assert (job.queue_name, job.cron, job.args) == ("default", SCHEDULE, (JOB_NAME,))
    assert (sweep.queue_name, sweep.cron, sweep.name) == ("default", "* * * * *", "jobs-sweep")
    db_session.commit()
    with at(27, 10):
        job.enqueue(runner.connection)  # what the scheduler does at 10:05
        drain_jobs(app)  # the worker runs it, and then the deliveries it queued
        drain_jobs(app)
    assert len(smtp_server.messages) == 1 and len(sms_server.messages) == 1
