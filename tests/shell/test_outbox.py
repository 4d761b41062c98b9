"""The job outbox: a job is written with the change that asked for it and marked sent once a
runner has it. With Redis away the page that asked still answers, and the sweep sends the job
when Redis is back (or runs it here without Redis)."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa
import time_machine

from cases.case import Case
from cases.jobs import OutboxJob, enqueue
from cases.referrals import ReferralBatch
from shell.job_runner import InProcessRunner, RQRunner
from tests.cases.test_referrals import GOOD
from tests.client_area.test_client_area import TODAY, post, signed_in_client, upload
from tests.conftest import drain_jobs
from tests.shell.jobs_for_tests import MARK
from tests.shell.test_jobs import ran

REDIS_AWAY = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def outbox(session) -> list[tuple[str, bool]]:
    """This test's jobs (tests on PostgreSQL that commit for real may leave others behind)."""
    rows = session.scalars(
        sa.select(OutboxJob).where(OutboxJob.id > START.get(0, 0)).order_by(OutboxJob.id)
    )
    return [(row.name, row.sent_at is not None) for row in rows]


START: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _from_here(db_session):
    START[0] = db_session.scalar(sa.select(sa.func.coalesce(sa.func.max(OutboxJob.id), 0)))
    yield
    START.clear()


def test_a_job_is_written_with_its_change_and_marked_sent_once_run(app, db_session):
    enqueue(db_session, MARK, "outboxed")
    assert outbox(db_session) == [("tests.mark", False)]  # in the same transaction
    db_session.commit()
    drain_jobs(app)
    assert ran(db_session, "outboxed")
    assert outbox(db_session) == [("tests.mark", True)]


def test_a_job_dropped_by_a_rollback_leaves_no_outbox_row(db_session):
    enqueue(db_session, MARK, "never")
    db_session.rollback()
    assert outbox(db_session) == []


def test_with_redis_away_the_confirm_page_answers_and_the_sweep_imports_later(
    app, client, cli, login, make_user, make_client, db_session, redis_url, monkeypatch
):
    signed_in_client(login, make_user, make_client)
    with time_machine.travel(TODAY, tick=False):
        response = upload(client, GOOD)
        batch_page = response.headers["Location"]
        batch_id = int(batch_page.rsplit("/", 1)[1])
        monkeypatch.setitem(app.extensions, "recourse.jobs", RQRunner(app, REDIS_AWAY))
        response = post(client, f"/client/referrals/{batch_id}/confirm", page=batch_page)
        assert response.status_code == 302  # not a 500: the import waits in the outbox
        assert db_session.get(ReferralBatch, batch_id).status == "queued"
        assert outbox(db_session) == [("referrals.import", False)]

        # Redis is still away: the sweep says so and keeps the job.
        result = cli.invoke(args=["jobs", "sweep", "--older-than", "0"])
        assert result.exit_code == 1 and "Redis is still away" in result.output
        assert outbox(db_session) == [("referrals.import", False)]

        # Redis is back (or, without Redis, the jobs run in-process): the sweep sends it.
        back = RQRunner(app, redis_url) if redis_url else InProcessRunner(app)
        monkeypatch.setitem(app.extensions, "recourse.jobs", back)
        result = cli.invoke(args=["jobs", "sweep", "--older-than", "0"])
        assert result.exit_code == 0 and "1 job(s) sent" in result.output, result.output
        drain_jobs(app)
        db_session.expire_all()
        assert db_session.get(ReferralBatch, batch_id).status == "imported"
        assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2
        assert outbox(db_session) == [("referrals.import", True)]
        page = client.get(batch_page).get_data(as_text=True)
        assert re.search(r'id="imported-count">2<', page)
        # Swept once: a second sweep finds nothing to send.
        result = cli.invoke(args=["jobs", "sweep", "--older-than", "0"])
        assert "0 job(s) sent" in result.output


def test_the_sweep_leaves_jobs_younger_than_asked(app, db_session, cli, monkeypatch):
    monkeypatch.setitem(app.extensions, "recourse.jobs", RQRunner(app, REDIS_AWAY))
    enqueue(db_session, MARK, "young")
    db_session.commit()
    monkeypatch.setitem(app.extensions, "recourse.jobs", InProcessRunner(app))
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)):
        assert "0 job(s) sent" in cli.invoke(args=["jobs", "sweep"]).output
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)):
        assert "1 job(s) sent" in cli.invoke(args=["jobs", "sweep"]).output
    assert ran(db_session, "young")
