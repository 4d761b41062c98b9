"""Background jobs, as the domain asks for them: by dotted name and ids, after the commit.

The domain only says what should run (`enqueue`); the web app decides how (RQ with a
`REDIS_URL`, in-process otherwise) and runs it once the current transaction has committed,
so a job never looks for rows that are not there yet. A job function takes the session
first, then plain ids: `def process(session, batch_id): ...`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, scoped_session

QUEUES = ("default", "imports", "payments", "mail")
PENDING_KEY = "recourse.pending_jobs"


@dataclass(frozen=True)
class JobRequest:
    func: str  # "package.module:function"
    args: tuple
    queue: str = "default"
    job_id: str | None = None


def enqueue(
    session: Session, func: str, *args, queue: str = "default", job_id: str | None = None
) -> JobRequest:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if ":" not in func:
        raise ValueError("name a job as 'package.module:function'")
    request = JobRequest(func, args, queue, job_id)
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # so that a rollback, even of an otherwise empty unit, drops the job
    session.info.setdefault(PENDING_KEY, []).append(request)
    return request


def take_pending(session: Session) -> list[JobRequest]:
    return session.info.pop(PENDING_KEY, [])
