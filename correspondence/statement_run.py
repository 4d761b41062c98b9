"""The job that issues one client's statement of a month's run (payments.statements.StatementRun)
and records how it went on the run's item, so the run's page can count it."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from cases import audit
from cases.jobs import handles
from cases.model import utcnow
from correspondence.statement_mail import issue_statement
from payments.statements import (
    ISSUE_FOR_RUN,
    StatementError,
    StatementRunItem,
    parse_month,
)

log = logging.getLogger(__name__)


@handles(ISSUE_FOR_RUN.name)
def issue_for_run(session: Session, item_id: int) -> None:
    """Issue (or find, unchanged) the item's statement. Safe to run again: an item already done
    is left as it is, and a statement is never issued twice (statements.issue)."""
    item = session.get(StatementRunItem, item_id)
    if item is None or item.status != "waiting":
        return
    run = item.run
    actor = audit.Actor(run.started_by_id, f"statement run {run.id}: {run.started_by}"[:80])
    try:
        with session.begin_nested():  # a refused statement leaves nothing half-written
            result = issue_statement(session, item.client, parse_month(run.month), actor=actor)
    except StatementError as exc:
        item.status, item.error = "failed", str(exc)
    except Exception as exc:  # recorded on the run so the page shows it, and logged in full
        log.exception("statement of %s for run %s failed", item.client.code, run.id)
        item.status, item.error = "failed", f"could not be issued ({type(exc).__name__})"
    else:
        item.status = "issued" if result.created else "unchanged"
        item.statement_id = result.statement.id
    item.finished_at = utcnow()
    session.flush()
