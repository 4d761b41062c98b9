"""Jobs used by the job tests: each leaves an audit event behind when it runs."""

from cases import audit
from cases.jobs import declare, handles

MARK = declare("tests.mark")
MARK_IMPORTS = declare("tests.mark_imports", queue="imports")
MARK_MAIL = declare("tests.mark_mail", queue="mail")
MARK_THEN_FAIL = declare("tests.mark_then_fail")


@handles(MARK.name)
@handles(MARK_IMPORTS.name)
@handles(MARK_MAIL.name)
def mark(session, label: str) -> None:
    audit.record(session, audit.Actor(None, "job"), "test", label, "job.ran")


@handles(MARK_THEN_FAIL.name)
def mark_then_fail(session, label: str) -> None:
    mark(session, label)
    raise RuntimeError(f"job {label} failed")
