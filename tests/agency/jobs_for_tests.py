"""A job used by the job tests: it leaves an audit event behind when it runs."""

from cases import audit


def mark(session, label: str) -> None:
    audit.record(session, audit.Actor(None, "job"), "test", label, "job.ran")


def mark_then_fail(session, label: str) -> None:
    mark(session, label)
    raise RuntimeError(f"job {label} failed")
