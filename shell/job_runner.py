"""Running the domain's jobs: on RQ queues when REDIS_URL is set, in-process otherwise."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import AbandonedJobError
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.utils import current_timestamp
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


def run_job(name: str, *args, outbox_id: int | None = None) -> None:
    """Run one job in the current app context as its own unit of work (in-process, its outbox
    row is marked sent in the same unit: done once)."""
    handle = jobs.handler(name)
    try:
        with step() as session:
            handle(session, *args)
            if outbox_id is not None:
                jobs.mark_sent(session, [outbox_id])
    finally:
        db.session.remove()


def rq_entry(name: str, *args, outbox_id: int | None = None, nudge: bool = False) -> None:
    """What RQ calls: the worker has pushed the app context (see `flask worker`). The job's
    outbox row is marked sent with its run too, in case the mark after the push was lost. A
    nudge is no longer waiting once it starts: the next one asked for is queued."""
    runner = current_app.extensions["recourse.jobs"]
    if nudge and isinstance(runner, RQRunner):
        runner.connection.delete(RQRunner.waiting_key(name))
    with current_app.app_context():  # a fresh context, so each job has its own session
        run_job(name, *args, outbox_id=outbox_id)


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
        for request in _without_repeated_nudges(requests):
            self.dispatch(request)

    def dispatch(self, request: JobRequest) -> None:
        self.ran.append(request)
        with self.app.app_context():
            try:
                run_job(request.name, *request.args, outbox_id=request.outbox_id)
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

    @staticmethod
    def waiting_key(name: str) -> str:
        """Set while a nudge of job `name` waits on its queue (cleared as it starts)."""
        return f"recourse:nudge-waiting:{name}"

    def dispatch_all(self, requests: list[JobRequest]) -> None:
        """A commit's jobs, onto their queues in one round trip to Redis (and one more for a
        nudge, to see whether one waits already), then marked sent in the outbox. With Redis away nothing fails here: the jobs wait in the outbox for the
        sweep (a nudge is dropped: the scheduled run does its work)."""
        try:
            requests = [r for r in _without_repeated_nudges(requests) if self._to_queue(r)]
            if requests:
                self._push(requests)
        except RedisError as exc:
            log.warning(
                "Redis is away (%s): %d job(s) wait in the outbox (a nudge, for its scheduled run)",
                exc,
                len(requests),
            )
            return
        sent = [r.outbox_id for r in requests if r.outbox_id]
        if sent:
            with db.engine.begin() as connection:
                jobs.mark_sent(Session(bind=connection), sent)

    def _to_queue(self, request: JobRequest) -> bool:
        """Whether to queue it: a nudge only if none of its job waits already (one waits at
        most; the key outlives a lost one by NUDGE_WAIT_SECONDS at most)."""
        if not request.nudge:
            return True
        key = self.waiting_key(request.name)
        return bool(self.connection.set(key, 1, nx=True, ex=NUDGE_WAIT_SECONDS))

    def _push(self, requests: list[JobRequest]) -> None:
        by_queue: dict[str, list] = {}
        for request in requests:
            by_queue.setdefault(request.queue, []).append(
                Queue.prepare_data(
                    rq_entry,
                    (request.name, *request.args),
                    {"outbox_id": request.outbox_id, "nudge": request.nudge},
                    job_id=request.job_id,
                )
            )
        with self.connection.pipeline() as pipe:
            for name, jobs in by_queue.items():
                self.queue(name).enqueue_many(jobs, pipeline=pipe)
            pipe.execute()


def _without_repeated_nudges(requests: list[JobRequest]) -> list[JobRequest]:
    """A commit's jobs with each nudge once (one run does the work of all)."""
    seen: set[tuple] = set()
    kept = []
    for request in requests:
        if request.nudge:
            key = (request.name, request.args)
            if key in seen:
                continue
            seen.add(key)
        kept.append(request)
    return kept


# A nudge's waiting mark outlives a job lost on its queue (Redis flushed, a worker gone) by this
# much at most; its work is done by the scheduled run meanwhile.
NUDGE_WAIT_SECONDS = 120

SWEEP_AFTER = dt.timedelta(minutes=1)


def sweep(older_than: dt.timedelta = SWEEP_AFTER) -> int:
    """Send again the jobs asked for over `older_than` ago that no runner took (Redis was away
    when their transaction committed), and the jobs a stopped worker left unfinished (see
    `resend_abandoned`). Their handlers are safe to run again. With Redis still away this
    raises, and the jobs stay in the outbox."""
    runner = current_app.extensions["recourse.jobs"]
    if isinstance(runner, RQRunner):
        resend_abandoned(runner)
        with step() as session:
            requests = [row.request() for row in jobs.unsent(session, older_than=older_than)]
            runner._push(requests)
            jobs.mark_sent(session, [r.outbox_id for r in requests])
        return len(requests)
    with step() as session:
        rows = jobs.unsent(session, older_than=older_than, lock=False)
        requests = [row.request() for row in rows]
    runner.dispatch_all(requests)  # each job marks its own row in its own unit of work
    return len(requests)


ABANDONED = f"due to {AbandonedJobError.__name__}"  # how RQ files a job whose worker died


def resend_abandoned(runner: RQRunner) -> int:
    """Put back on their queues the jobs a worker took and never finished (it was killed, or its
    machine went down): RQ sees them once their heartbeat has lapsed (about 90 seconds), and
    would only file them as failed; those it already filed are sent again too. Their handlers
    are safe to run again."""
    count = 0
    for name in jobs.QUEUES:
        queue = runner.queue(name)
        registry = StartedJobRegistry(queue=queue)
        lapsed = runner.connection.zrangebyscore(registry.key, 0, current_timestamp())
        job_ids = dict.fromkeys(registry.parse_job_id(entry) for entry in lapsed)
        if lapsed:
            runner.connection.zrem(registry.key, *lapsed)
        for job_id in job_ids:
            job = queue.fetch_job(job_id)
            # Killed before or after the worker marked it started: either way it is off its
            # queue and unfinished.
            if job is not None and job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED):
                queue.enqueue_job(job)
                count += 1
        # ...and those a worker's maintenance found first and filed as failed.
        failed = FailedJobRegistry(queue=queue)
        for job in filter(None, map(queue.fetch_job, failed.get_job_ids())):
            result = job.latest_result()
            if result is not None and ABANDONED in (result.exc_string or ""):
                failed.requeue(job)
                count += 1
    if count:
        log.warning("%d job(s) whose worker stopped were sent again", count)
    return count


def rq_sweep() -> None:
    """What RQ's cron scheduler calls every minute (the worker has pushed the app context)."""
    with current_app.app_context():
        sweep()


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
