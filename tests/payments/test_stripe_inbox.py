"""The webhook's inbox: a verified event is kept once and answered at once; the
`stripe.apply_events` job applies it (on a worker with Redis, in-process before the answer
without); one that cannot be applied yet waits with its error and is applied by a later run."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases.model import utcnow
from payments.gateway import StripeGateway, sign_payload
from payments.posting import balance_cents
from payments.webhooks import APPLY_EVENTS, InboxEvent, StripeEvent, next_pending
from shell.extensions import db
from shell.job_runner import RQRunner
from shell.stripe_cli import SCHEDULE, apply_events_job, register_cron
from tests.conftest import drain_jobs
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_gateway import _dead_port
from tests.payments.test_webhooks import deliver, event, outcome, paid, payments, stripe_app

__all__ = ["paid", "stripe_app"]  # fixtures


def post(client, body: bytes):
    """A delivery, signed, and nothing run after it but what the app runs itself."""
    return client.post(
        "/stripe/webhook",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign_payload(body, WEBHOOK_SECRET, int(time.time()))},
    )


def inbox(session) -> list[InboxEvent]:
    session.expire_all()
    return session.scalars(sa.select(InboxEvent).order_by(InboxEvent.id)).all()


def kept(db_session, ev: dict, **columns) -> dict:
    """`ev` in the inbox as the webhook keeps it (with `columns`: as earlier attempts left it)."""
    db_session.add(
        InboxEvent(event_id=ev["id"], type=ev["type"], payload=json.dumps(ev), **columns)
    )
    db_session.flush()
    return ev


def one_kept(db_session, intent_id: str) -> dict:
    """A succeeded payment of $100 on the `paid` case, kept and not applied."""
    return kept(db_session, event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000}))


def test_an_event_is_kept_as_sent_answered_and_applied_once(app, client, db_session, paid):
    case, intent_id = paid
    succeeded = event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000})
    body = json.dumps(succeeded).encode()

    answer = post(client, body)

    assert answer.status_code == 200
    assert answer.json == {"received": True, "event": succeeded["id"], "duplicate": False}
    [kept] = inbox(db_session)
    assert (kept.event_id, kept.type, kept.payload) == (
        succeeded["id"],
        "payment_intent.succeeded",
        body.decode(),
    )
    if isinstance(app.extensions["recourse.jobs"], RQRunner):
        # On a worker: answered before it is applied.
        assert kept.applied_at is None and payments(db_session, case.id) == []
        drain_jobs(app, ("payments",))
    [kept] = inbox(db_session)
    assert kept.applied_at is not None and kept.attempts == 0
    assert outcome(db_session, succeeded) == f"posted {intent_id}"
    assert balance_cents(db_session, case.id) == 40_000

    # Sent again: kept once, nothing moves.
    again = post(client, body)
    assert again.json["duplicate"] is True
    drain_jobs(app, ("payments",))
    assert len(inbox(db_session)) == 1
    assert balance_cents(db_session, case.id) == 40_000


@pytest.mark.parametrize(
    "body, message",
    [
        ({"type": "payment_intent.succeeded", "data": {"object": {}}}, "not a Stripe event"),
        ({"id": "evt_1", "type": "charge.refunded", "data": {}}, "carries no object"),
        ({"id": "evt_" + "x" * 90, "type": "charge.refunded", "data": {"object": {}}}, "too long"),
    ],
)
def test_a_signed_body_that_is_no_event_is_refused_and_kept_nowhere(
    client, db_session, paid, body, message
):
    answer = post(client, json.dumps(body).encode())

    assert answer.status_code == 400
    assert message in answer.json["message"]
    assert inbox(db_session) == []


def test_an_event_that_cannot_be_applied_yet_waits_with_its_error_and_is_applied_later(
    app, client, cli, db_session, paid, gateway
):
    """A refund that arrives before its payment needs the PaymentIntent from Stripe; Stripe is
    away: Stripe still hears 200 (the event is kept), the attempt is undone and noted, the
    next job leaves it alone for RETRY_AFTER, and `flask stripe apply-events` applies it once
    Stripe is back."""
    case, intent_id = paid
    charge_id = gateway.retrieve_payment_intent(intent_id).latest_charge_id
    refund = event(
        "charge.refunded",
        {"id": charge_id, "payment_intent": intent_id, "amount_refunded": 4_000},
    )
    away = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{_dead_port()}")
    app.extensions["recourse.gateway"] = away
    try:
        answer = deliver(client, refund)  # and its job run
        assert answer.status_code == 200
        [kept] = inbox(db_session)
        assert kept.applied_at is None and kept.attempts == 1 and kept.tried_at is not None
        assert "Stripe" in kept.last_error
        assert payments(db_session, case.id) == [] and outcome(db_session, refund) is None

        # The job a new event asks for leaves it until RETRY_AFTER has passed.
        with app.app_context():
            run = apply_events_job(db_session)
        assert (run.applied, run.failed, run.left) == (0, [], 1)
    finally:
        app.extensions["recourse.gateway"] = gateway
        away.close()

    result = cli.invoke(args=["stripe", "apply-events", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"applied": 1, "failed": [], "left": 0}
    assert [(e.kind, e.amount_cents) for e in payments(db_session, case.id)] == [
        ("payment", -10_000),
        ("reversal", 4_000),
    ]
    [kept] = inbox(db_session)
    assert kept.applied_at is not None and kept.attempts == 1
    assert outcome(db_session, refund) == "reversed 4000"


def test_apply_events_with_stripe_away_says_so_and_exits_1(
    app, cli, db_session, paid, gateway, caplog
):
    case, intent_id = paid
    refund = event(
        "charge.refunded", {"id": "ch_x", "payment_intent": intent_id, "amount_refunded": 100}
    )
    kept(db_session, refund, attempts=4)
    away = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{_dead_port()}")
    app.extensions["recourse.gateway"] = away
    try:
        result = cli.invoke(args=["stripe", "apply-events"])
    finally:
        app.extensions["recourse.gateway"] = gateway
        away.close()

    assert result.exit_code == 1
    assert "0 event(s) applied, 1 failed, 1 left to apply." in result.output
    assert f"failed: {refund['id']}: " in result.output
    # Its fifth failed attempt: an ERROR in the log, for the alarms.
    assert any(
        r.levelname == "ERROR" and f"{refund['id']} has failed 5 times" in r.getMessage()
        for r in caplog.records
    )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0


def test_a_run_passes_over_an_event_another_run_holds(app):
    """Two workers at once never take the same event: the second takes the next one. Two
    connections of their own, on rows committed for real (and deleted after)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer at a time)")
    ids = [f"evt_hold_{n}_{time.time_ns()}" for n in (1, 2)]
    table = InboxEvent.__table__
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    "event_id": i,
                    "type": "charge.refunded",
                    "payload": "{}",
                    "attempts": 0,
                    "last_error": "",
                    "received_at": utcnow(),
                }
                for i in ids
            ],
        )
    try:
        with engine.connect() as a, engine.connect() as b:
            first = next_pending(Session(bind=a))
            second = next_pending(Session(bind=b))
            assert (first.event_id, second.event_id) == (ids[0], ids[1])
            third = next_pending(Session(bind=b), skip={second.id})
            assert third is None  # the first is held by the other worker
            a.rollback()
            b.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.event_id.in_(ids)))


def test_the_minute_run_is_on_the_cron_scheduler(app, redis_url):
    if not redis_url:
        pytest.skip("needs Redis (TEST_REDIS_URL)")
    from redis import Redis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    register_cron(scheduler)
    [job] = scheduler.get_jobs()
    assert (job.args, job.cron, job.queue_name) == ((APPLY_EVENTS.name,), SCHEDULE, "payments")


def test_an_event_that_failed_long_ago_is_tried_again_by_the_next_job(app, db_session, paid):
    case, intent_id = paid
    kept(
        db_session,
        event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000}),
        attempts=2,
        tried_at=utcnow() - dt.timedelta(minutes=5),
        last_error="OperationalError: deadlock detected",
    )

    with app.app_context():
        run = apply_events_job(db_session)

    assert (run.applied, run.failed, run.left) == (1, [], 0)
    assert balance_cents(db_session, case.id) == 40_000


def test_a_deadlock_victim_is_taken_again_at_once(app, db_session, paid):
    """PostgreSQL picks one of two postings as a deadlock's victim and rolls it back: the run
    takes the event again at once, without waiting for the next run. The database's error is
    raised here, once, as PostgreSQL raises it."""
    from psycopg.errors import DeadlockDetected

    case, intent_id = paid
    one_kept(db_session, intent_id)
    with app.app_context():
        engine = db.engine
    raised = []

    def deadlock_once(_conn, _cursor, statement, parameters, *_):
        if "INSERT INTO stripe_events" in statement and not raised:
            raised.append(statement)
            raise sa.exc.OperationalError(statement, parameters, DeadlockDetected("deadlock"))

    sa.event.listen(engine, "before_cursor_execute", deadlock_once)
    try:
        with app.app_context():
            run = apply_events_job(db_session)
    finally:
        sa.event.remove(engine, "before_cursor_execute", deadlock_once)

    assert raised and (run.applied, run.failed, run.left) == (1, [], 0)
    [kept] = inbox(db_session)
    assert kept.attempts == 0 and kept.applied_at is not None
    assert [e.amount_cents for e in payments(db_session, case.id)] == [-10_000]


def test_a_run_begins_no_event_once_its_time_is_up_and_on_rq_asks_for_the_next(
    app, db_session, paid, monkeypatch
):
    from shell import stripe_cli

    case, intent_id = paid
    one_kept(db_session, intent_id)
    with app.app_context():
        run = stripe_cli.apply_events(seconds=0)
    assert (run.applied, run.stopped, run.left) == (0, True, 1)

    monkeypatch.setattr(stripe_cli, "WORKER_SECONDS", 0)
    monkeypatch.setattr(stripe_cli, "IN_PROCESS_SECONDS", 0)
    runner = app.extensions["recourse.jobs"]
    on_rq = isinstance(runner, RQRunner)
    if on_rq:
        runner.queue("payments").empty()
        runner.connection.delete(RQRunner.waiting_key(APPLY_EVENTS.name))
    with app.app_context():
        run = apply_events_job(db_session)
    assert (run.applied, run.stopped) == (0, True)
    if on_rq:  # the next job is queued to go on with the backlog
        assert runner.queue("payments").count == 1
        monkeypatch.setattr(stripe_cli, "WORKER_SECONDS", 60.0)
        drain_jobs(app, ("payments",))
    else:  # in-process: the next event's request, or `stripe apply-events`, goes on
        with app.app_context():
            stripe_cli.apply_events()
    assert balance_cents(db_session, case.id) == 40_000


def test_rq_s_job_timeout_is_not_taken_for_an_event_that_failed(app, db_session, paid):
    """RQ ends a job past its timeout by raising in it: the run ends there, the event it had
    begun is rolled back and still waits, and no failure is noted against it."""
    from rq.timeouts import JobTimeoutException

    case, intent_id = paid
    one_kept(db_session, intent_id)
    with app.app_context():
        engine = db.engine

    def time_is_up(_conn, _cursor, statement, *_):
        if "INSERT INTO stripe_events" in statement:
            raise JobTimeoutException("Task exceeded maximum timeout value (180 seconds)")

    sa.event.listen(engine, "before_cursor_execute", time_is_up)
    try:
        with app.app_context(), pytest.raises(JobTimeoutException):
            apply_events_job(db_session)
    finally:
        sa.event.remove(engine, "before_cursor_execute", time_is_up)

    [kept] = inbox(db_session)
    assert kept.applied_at is None and kept.attempts == 0
    assert payments(db_session, case.id) == []
