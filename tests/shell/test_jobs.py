"""Jobs are enqueued only after the commit, run in the app context, and take ids."""

import pytest
import sqlalchemy as sa
from rq import Queue

from agency import create_app
from cases import jobs
from cases.audit import AuditEvent
from cases.jobs import JobRequest, enqueue
from shell.job_runner import InProcessRunner, RQRunner
from shell.unit_of_work import attempt
from tests.conftest import drain_jobs
from tests.shell.jobs_for_tests import MARK, MARK_IMPORTS, MARK_MAIL, MARK_THEN_FAIL

JOB = MARK


def ran(session, label) -> bool:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "job.ran", AuditEvent.entity_id == label)
        )
        > 0
    )


def test_a_job_runs_after_the_commit(app, db_session):
    enqueue(db_session, JOB, "after-commit")
    assert not ran(db_session, "after-commit")
    db_session.commit()
    drain_jobs(app)
    assert ran(db_session, "after-commit")


def test_a_savepoint_released_does_not_send_the_jobs_before_the_commit(app, db_session):
    enqueue(db_session, JOB, "savepoint")
    with db_session.begin_nested():  # as posting a payment does, several in one transaction
        pass
    drain_jobs(app)
    assert not ran(db_session, "savepoint")
    db_session.commit()
    drain_jobs(app)
    assert ran(db_session, "savepoint")


def test_a_job_is_dropped_when_its_transaction_rolls_back(app, db_session):
    enqueue(db_session, JOB, "rolled-back")
    db_session.rollback()
    db_session.commit()  # a later commit must not send it either
    drain_jobs(app)
    assert not ran(db_session, "rolled-back")


def test_unknown_queues_and_names_are_refused(db_session):
    with pytest.raises(ValueError, match="unknown queue"):
        jobs.declare("tests.nowhere", queue="nope")
    with pytest.raises(ValueError, match="by what it does"):
        jobs.declare("tests.shell.jobs_for_tests:mark")
    with pytest.raises(ValueError, match="already declared"):
        jobs.declare(MARK.name, queue="mail")
    with pytest.raises(jobs.UnknownJob, match="unknown job 'tests.never_declared'"):
        enqueue(db_session, "tests.never_declared")
    assert jobs.pending(db_session) == []


def test_the_app_refuses_to_start_while_a_declared_job_has_no_handler(monkeypatch, tmp_path):
    monkeypatch.setitem(jobs._declared, "tests.orphan", jobs.Job("tests.orphan"))
    with pytest.raises(RuntimeError, match="jobs declared with no handler: tests.orphan"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/orphan.db"})


def test_the_domain_queues_jobs_by_name_and_the_app_handles_every_one(app):
    assert jobs.unhandled() == []
    for name in (
        "mail.deliver",
        "texts.deliver",
        "receipts.email",
        "letters.settled",
        "autopay.authentication_email",
        "autopay.charge_due",
        "referrals.import",
        "reminders.send_due",
        "statements.month_end",
    ):
        assert callable(jobs.handler(name)), name


def test_a_refused_attempt_undoes_its_writes_and_its_jobs_and_the_rest_commits(app, db_session):
    enqueue(db_session, JOB, "kept")
    with pytest.raises(ValueError, match="refused"):
        with attempt(db_session):
            enqueue(db_session, JOB, "undone")
            jobs.handler(MARK.name)(db_session, "written-then-undone")
            raise ValueError("refused")
    db_session.commit()
    drain_jobs(app)
    assert ran(db_session, "kept")
    assert not ran(db_session, "undone")
    assert not ran(db_session, "written-then-undone")


def test_the_runner_follows_redis_url(app, redis_url):
    runner = app.extensions["recourse.jobs"]
    assert isinstance(runner, RQRunner if redis_url else InProcessRunner)


def test_with_redis_jobs_wait_on_their_named_queue(app, db_session, redis_url):
    if not redis_url:
        pytest.skip("runs with TEST_REDIS_URL (the PostgreSQL + Redis run)")
    runner = app.extensions["recourse.jobs"]
    queue: Queue = runner.queue("imports")
    queue.empty()
    enqueue(db_session, MARK_IMPORTS, "queued")
    assert queue.count == 0  # nothing before the commit
    db_session.commit()
    assert queue.count == 1
    assert not ran(db_session, "queued")
    drain_jobs(app)
    assert ran(db_session, "queued")


def test_with_redis_a_commits_jobs_go_to_their_queues_together_in_order(app, db_session, redis_url):
    if not redis_url:
        pytest.skip("runs with TEST_REDIS_URL (the PostgreSQL + Redis run)")
    runner = app.extensions["recourse.jobs"]
    queues = {name: runner.queue(name) for name in ("imports", "mail")}
    for queue in queues.values():
        queue.empty()
    for label, queue in (("m1", "mail"), ("i1", "imports"), ("m2", "mail"), ("m3", "mail")):
        enqueue(db_session, MARK_MAIL if queue == "mail" else MARK_IMPORTS, label)
    db_session.commit()
    assert [job.args[1] for job in queues["mail"].jobs] == ["m1", "m2", "m3"]
    assert [job.args[1] for job in queues["imports"].jobs] == ["i1"]
    drain_jobs(app)
    assert all(ran(db_session, label) for label in ("m1", "i1", "m2", "m3"))


def test_worker_command_needs_redis(cli, redis_url):
    if redis_url:
        result = cli.invoke(args=["worker", "--burst", "mail"])
        assert result.exit_code == 0, result.output
    else:
        result = cli.invoke(args=["worker", "--burst"])
        assert result.exit_code == 1
        assert "REDIS_URL is not set" in result.output


def test_an_in_process_job_that_fails_is_rolled_back_and_does_not_break_its_caller(app, db_session):
    runner = InProcessRunner(app)
    failing = JobRequest(MARK_THEN_FAIL.name, ("failing",))
    runner.dispatch(failing)  # no exception reaches the request that queued it
    runner.dispatch(JobRequest(JOB.name, ("next",)))
    assert [(r.name, str(e)) for r, e in runner.failed] == [
        ("tests.mark_then_fail", "job failing failed")
    ]
    assert not ran(db_session, "failing") and ran(db_session, "next")


def nudged(session, label) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "job.ran", AuditEvent.entity_id == label)
    )


def test_a_nudge_skips_the_outbox_and_runs_once_per_commit(app, db_session):
    from cases.jobs import OutboxJob

    runner = app.extensions["recourse.jobs"]
    if isinstance(runner, RQRunner):  # no nudge said to wait by an earlier test
        runner.connection.delete(RQRunner.waiting_key(MARK_IMPORTS.name))
    before = db_session.scalar(sa.select(sa.func.count()).select_from(OutboxJob))
    enqueue(db_session, MARK_IMPORTS, "nudge", durable=False)
    enqueue(db_session, MARK_IMPORTS, "nudge", durable=False)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OutboxJob)) == before
    db_session.commit()
    drain_jobs(app)
    assert nudged(db_session, "nudge") == 1


def test_with_redis_one_nudge_waits_at_most_and_the_next_is_queued_once_it_starts(
    app, db_session, redis_url
):
    if not redis_url:
        pytest.skip("runs with TEST_REDIS_URL (the PostgreSQL + Redis run)")
    runner = app.extensions["recourse.jobs"]
    queue: Queue = runner.queue("imports")
    queue.empty()
    runner.connection.delete(RQRunner.waiting_key(MARK_IMPORTS.name))
    for _ in range(3):  # three commits, each asking while one waits: one queued
        enqueue(db_session, MARK_IMPORTS, "waits", durable=False)
        db_session.commit()
    assert queue.count == 1
    drain_jobs(app, ("imports",))
    assert nudged(db_session, "waits") == 1
    # It started: the next nudge is queued again.
    enqueue(db_session, MARK_IMPORTS, "waits", durable=False)
    db_session.commit()
    assert queue.count == 1
    drain_jobs(app, ("imports",))
    assert nudged(db_session, "waits") == 2
