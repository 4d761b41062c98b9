"""One unit of work per request: the boundary commits once if the view returned (whatever its
status code), rolls back if it raised, and sends the jobs only after its commit; a refusal shown
by the view undoes just its own part."""

import pytest
import sqlalchemy as sa
from flask import abort
from sqlalchemy import event
from sqlalchemy.orm import Session

from agency import create_app
from cases import audit
from cases.audit import AuditEvent
from cases.jobs import enqueue, pending
from shell.extensions import db
from shell.unit_of_work import attempt, in_unit_of_work
from tests.shell.jobs_for_tests import MARK

ACTOR = audit.Actor(None, "test")


def record(label: str) -> None:
    audit.record(db.session, ACTOR, "test", label, "uow.test")


def recorded() -> set[str]:
    return set(
        db.session.scalars(sa.select(AuditEvent.entity_id).where(AuditEvent.action == "uow.test"))
    ) | set(
        db.session.scalars(sa.select(AuditEvent.entity_id).where(AuditEvent.action == "job.ran"))
    )


class Refused(ValueError):
    pass


@pytest.fixture
def boundary(tmp_path):
    """An app of its own (its own SQLite file) with views that write and then end each way."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/uow.db", "TESTING": True})
    with app.app_context():
        db.create_all()

    def returns_422():
        record("kept-on-422")
        return "refused, and the attempt counted", 422

    def aborts():
        record("gone-on-abort")
        enqueue(db.session, MARK, "job-of-an-aborted-request")
        abort(409)

    def refuses_part():
        record("kept-beside-refusal")
        enqueue(db.session, MARK, "job-kept")
        try:
            with attempt():
                record("undone-by-refusal")
                enqueue(db.session, MARK, "job-dropped")
                raise Refused("no")
        except Refused:
            return "shown", 422
        return "unreachable", 500

    def crashes():
        record("gone-on-crash")
        raise RuntimeError("bug")

    def touches_nothing():
        return "ok"

    def only_queues_a_job():
        enqueue(db.session, MARK, "job-alone")
        return "queued"

    for view in (returns_422, aborts, refuses_part, crashes, touches_nothing, only_queues_a_job):
        app.add_url_rule(f"/{view.__name__}", view.__name__, in_unit_of_work(view))
    return app


def test_a_view_that_returns_commits_whatever_its_status(boundary):
    assert boundary.test_client().get("/returns_422").status_code == 422
    with boundary.app_context():
        assert "kept-on-422" in recorded()


def test_a_view_that_raises_leaves_nothing_and_sends_no_job(boundary):
    boundary.config["PROPAGATE_EXCEPTIONS"] = False
    client = boundary.test_client()
    assert client.get("/aborts").status_code == 409
    assert client.get("/crashes").status_code == 500
    with boundary.app_context():
        assert recorded() == set()
    runner = boundary.extensions["recourse.jobs"]
    assert [r.args for r in runner.ran] == []


def test_a_refused_part_is_undone_and_the_rest_commits_with_its_jobs(boundary):
    assert boundary.test_client().get("/refuses_part").status_code == 422
    runner = boundary.extensions["recourse.jobs"]
    assert [r.args for r in runner.ran] == [("job-kept",)]
    with boundary.app_context():
        assert recorded() == {"kept-beside-refusal", "job-kept"}
        assert pending(db.session) == []


def test_every_view_of_the_app_runs_in_the_unit_of_work(app):
    unwrapped = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint != "static" and getattr(view, "__wrapped__", None) is None
    ]
    assert unwrapped == []


def test_a_view_that_never_touches_the_database_has_nothing_to_commit(boundary):
    """Such as a portal page served from its cache on PostgreSQL (its one read is on a pool of
    its own): no session is made for it, so no commit; a view that writes or only queues a job
    still commits, and its job is sent after."""
    commits = []

    def committing(session):
        commits.append(session)

    event.listen(Session, "before_commit", committing)
    try:
        client = boundary.test_client()
        assert client.get("/touches_nothing").get_data(as_text=True) == "ok"
        assert commits == []
        assert client.get("/only_queues_a_job").status_code == 200
        assert commits  # the request's (and the in-process job's own)
        commits.clear()
        assert client.get("/returns_422").status_code == 422
        assert len(commits) == 1
    finally:
        event.remove(Session, "before_commit", committing)
    runner = boundary.extensions["recourse.jobs"]
    assert [r.args for r in runner.ran] == [("job-alone",)]
    with boundary.app_context():
        assert recorded() == {"kept-on-422", "job-alone"}


def test_a_step_whose_commit_fails_leaves_the_session_usable(app, db_session, make_client):
    """The commit's own flush is refused (a second client with the same code): the step raises,
    rolls back, and the session answers the next statement (it used to need a rollback first,
    and a loop of steps, like `stripe apply-events`, stopped at its next statement)."""
    from cases.clients import Client
    from shell.unit_of_work import step

    make_client(code="TWIN")
    db_session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        with step(db_session) as session:
            session.add(Client(code="TWIN", name="Twin again"))  # flushed only by the commit

    assert db_session.scalar(sa.select(sa.func.count()).select_from(Client)) >= 1
