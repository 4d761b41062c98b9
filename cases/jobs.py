"""Background jobs, as the domain asks for them: by logical name and ids, after the commit.

A job is declared by the package that queues it (`declare("receipts.email", queue="mail")`)
and handled by the package that owns the work (`@handles("receipts.email")`), so the domain
says what should run without naming the code that runs it. The app shell checks at start
that every declared job has a handler, decides how jobs run (RQ with a `REDIS_URL`,
in-process otherwise) and runs them once the current transaction has committed, so a job
never looks for rows that are not there yet. A handler takes the session first, then plain
ids: `def email_receipt(session, entry_id): ...`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, scoped_session

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


def enqueue(session: Session, job: Job | str, *args, job_id: str | None = None) -> JobRequest:
    """Ask for `job` to run with `args` once this unit of work commits (dropped if it rolls
    back)."""
    job = declared(job if isinstance(job, str) else job.name)
    request = JobRequest(job.name, args, job.queue, job_id)
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # so that a rollback, even of an otherwise empty unit, drops the job
    pending(session).append(request)
    return request


def pending(session: Session) -> list[JobRequest]:
    """The jobs this unit of work has asked for so far."""
    if isinstance(session, scoped_session):
        session = session()
    return session.info.setdefault(PENDING_KEY, [])


def take_pending(session: Session) -> list[JobRequest]:
    return session.info.pop(PENDING_KEY, [])
