"""Background jobs, as the domain asks for them: by logical name and ids, after the commit.

A job is declared by the package that queues it (`declare("receipts.email", queue="mail")`)
and handled by the package that owns the work (`@handles("receipts.email")`), so the domain
says what should run without naming the code that runs it. The app shell checks at start
that every declared job has a handler, decides how jobs run (RQ with a `REDIS_URL`,
in-process otherwise) and runs them once the current transaction has committed, so a job
never looks for rows that are not there yet. A handler takes the session first, then plain
ids: `def email_receipt(session, entry_id): ...`, and is safe to run again.

Every job asked for is also written to the outbox (`job_outbox`) in the same transaction as the
change that asked for it, and marked sent once the runner has it: a job whose hand-over failed
(Redis down) is not lost, and is sent again by the sweep (`flask jobs sweep`, the worker at
start, the cron scheduler every minute).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, scoped_session

from cases.model import Base, utcnow

QUEUES = ("default", "imports", "payments", "mail")
PENDING_KEY = "recourse.pending_jobs"


class UnknownJob(LookupError):
    pass


@dataclass(frozen=True)
class Job:
    name: str  # "receipts.email": what the work is, not where its code lives
    queue: str = "default"


@dataclass(frozen=True)
class JobRequest:
    name: str
    args: tuple
    queue: str = "default"
    job_id: str | None = None
    outbox_id: int | None = None
    nudge: bool = False  # see `enqueue(durable=False)`


class OutboxJob(Base):
    """A job asked for, written with the change that asked for it; `sent_at` once the runner
    took it (queued on Redis, or run in-process)."""

    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    queue: Mapped[str] = mapped_column(sa.String(20))
    args: Mapped[list] = mapped_column(sa.JSON)
    job_id: Mapped[str | None] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        sa.Index(
            "ix_job_outbox_unsent",
            "created_at",
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        ),
    )

    def request(self) -> JobRequest:
        return JobRequest(self.name, tuple(self.args), self.queue, self.job_id, self.id)


_declared: dict[str, Job] = {}
_handlers: dict[str, Callable] = {}


def declare(name: str, queue: str = "default") -> Job:
    """A job this package queues, on its queue. Declaring the same name twice is allowed only
    with the same queue."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if ":" in name or not name.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"name a job by what it does, e.g. 'receipts.email', not {name!r}")
    job = Job(name, queue)
    if _declared.setdefault(name, job) != job:
        raise ValueError(f"job {name!r} is already declared on queue {_declared[name].queue!r}")
    return job


def handles(name: str) -> Callable[[Callable], Callable]:
    """Registers the decorated function as the one handler of job `name`."""

    def register(func: Callable) -> Callable:
        known = _handlers.get(name)
        if known is not None and known.__qualname__ != func.__qualname__:
            raise ValueError(
                f"job {name!r} already has a handler: {known.__module__}.{known.__qualname__}"
            )
        _handlers[name] = func
        return func

    return register


def handler(name: str) -> Callable:
    try:
        return _handlers[name]
    except KeyError:
        raise UnknownJob(f"no handler for job {name!r}") from None


def unhandled() -> list[str]:
    """Declared jobs that nothing handles: the app refuses to start with any."""
    return sorted(name for name in _declared if name not in _handlers)


def declared(name: str) -> Job:
    try:
        return _declared[name]
    except KeyError:
        raise UnknownJob(f"unknown job {name!r}: declare it with cases.jobs.declare") from None


def enqueue(
    session: Session, job: Job | str, *args, job_id: str | None = None, durable: bool = True
) -> JobRequest:
    """Ask for `job` to run with `args` once this unit of work commits (dropped if it rolls
    back).

    `durable=False` asks for a nudge: a job whose work is recorded in rows of its own, which a
    scheduled run picks up if this one is lost (the Stripe inbox). It is not written to the
    outbox, and it is queued only if the same job is not already waiting to start (the runner
    keeps one waiting at most; the one waiting will see this unit's rows)."""
    job = declared(job if isinstance(job, str) else job.name)
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # so that a rollback, even of an otherwise empty unit, drops the job
    if durable:
        row = OutboxJob(name=job.name, queue=job.queue, args=list(args), job_id=job_id)
        session.add(row)
        session.flush()
        request = row.request()
    else:
        request = JobRequest(job.name, tuple(args), job.queue, job_id, nudge=True)
    pending(session).append(request)
    return request


def enqueue_many(session: Session, job: Job, args_of_each: list[tuple]) -> list[JobRequest]:
    """`enqueue` of the same job for each of several argument tuples: their outbox rows in one
    INSERT (and not one flush each)."""
    if not args_of_each:
        return []
    job = declared(job.name)
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()
    table = OutboxJob.__table__
    rows = [
        {
            "name": job.name,
            "queue": job.queue,
            "args": list(args),
            "job_id": None,
            "created_at": utcnow(),
            "sent_at": None,
            "attempts": 0,
        }
        for args in args_of_each
    ]
    # One statement whatever the database; the ids come back in no promised order, but rows
    # with the same job and arguments are interchangeable.
    returned = session.execute(
        sa.insert(table).values(rows).returning(table.c.id, table.c.args)
    ).all()
    requests = [
        JobRequest(job.name, tuple(args), job.queue, None, outbox_id)
        for outbox_id, args in sorted(returned)
    ]
    pending(session).extend(requests)
    return requests


def unsent(
    session: Session, *, older_than: dt.timedelta, limit: int = 500, lock: bool = True
) -> list[OutboxJob]:
    """Jobs asked for at least `older_than` ago that no runner took yet, oldest first; with
    `lock`, rows another sweep holds are skipped and these are held until the commit."""
    query = (
        sa.select(OutboxJob)
        .where(OutboxJob.sent_at.is_(None), OutboxJob.created_at <= utcnow() - older_than)
        .order_by(OutboxJob.id)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def mark_sent(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(
            sa.update(OutboxJob)
            .where(OutboxJob.id.in_(ids), OutboxJob.sent_at.is_(None))
            .values(sent_at=utcnow(), attempts=OutboxJob.attempts + 1)
        )


def pending(session: Session) -> list[JobRequest]:
    """The jobs this unit of work has asked for so far."""
    if isinstance(session, scoped_session):
        session = session()
    return session.info.setdefault(PENDING_KEY, [])


def take_pending(session: Session) -> list[JobRequest]:
    return session.info.pop(PENDING_KEY, [])
