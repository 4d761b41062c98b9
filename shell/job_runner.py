"""Running the domain's jobs: on RQ queues when REDIS_URL is set, in-process otherwise."""

from __future__ import annotations

import logging

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from cases import jobs
from cases.jobs import JobRequest, take_pending
from shell.extensions import db
from shell.unit_of_work import step

log = logging.getLogger(__name__)


def check_handlers() -> None:
    """At start: every job the code may queue has a handler, or the app does not start."""
    missing = jobs.unhandled()
    if missing:
        raise RuntimeError(f"jobs declared with no handler: {', '.join(missing)}")


def run_job(name: str, *args) -> None:
    """Run one job in the current app context as its own unit of work."""
    handle = jobs.handler(name)
    try:
        with step() as session:
            handle(session, *args)
    finally:
        db.session.remove()


def rq_entry(name: str, *args) -> None:
    """What RQ calls: the worker has pushed the app context (see `flask worker`)."""
    with current_app.app_context():  # a fresh context, so each job has its own session
        run_job(name, *args)


class InProcessRunner:
    """Runs each job right after the commit, in a fresh app context (and so a fresh session).

    A job that fails is rolled back and logged, as a worker would; the request whose commit
    queued it has already committed and goes on (a receipt email that cannot be sent must
    not turn the payment page into an error)."""

    def __init__(self, app: Flask):
        self.app = app
        self.ran: list[JobRequest] = []
        self.failed: list[tuple[JobRequest, BaseException]] = []

    def dispatch_all(self, requests: list[JobRequest]) -> None:
        for request in requests:
            self.dispatch(request)

    def dispatch(self, request: JobRequest) -> None:
        self.ran.append(request)
        with self.app.app_context():
            try:
                run_job(request.name, *request.args)
            except Exception as exc:
                self.failed.append((request, exc))
                log.exception("job %s%r failed", request.name, request.args)


class RQRunner:
    def __init__(self, app: Flask, redis_url: str):
        self.app = app
        self.connection = Redis.from_url(redis_url)

    def queue(self, name: str):
        return Queue(name, connection=self.connection)

    def dispatch(self, request: JobRequest) -> None:
        self.dispatch_all([request])

    def dispatch_all(self, requests: list[JobRequest]) -> None:
        """A commit's jobs, onto their queues in one round trip to Redis."""
        by_queue: dict[str, list] = {}
        for request in requests:
            by_queue.setdefault(request.queue, []).append(
                Queue.prepare_data(rq_entry, (request.name, *request.args), job_id=request.job_id)
            )
        with self.connection.pipeline() as pipe:
            for name, jobs in by_queue.items():
                self.queue(name).enqueue_many(jobs, pipeline=pipe)
            pipe.execute()


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["recourse.jobs"] = RQRunner(app, url) if url else InProcessRunner(app)


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the jobs wait for the whole unit of work to commit
    pending = take_pending(session)
    if not pending:
        return
    current_app.extensions["recourse.jobs"].dispatch_all(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole unit of work, not a savepoint in it
        take_pending(session)
