"""The unit of work: a request, a job or one step of a command commits once if nothing raised
and rolls back otherwise; the jobs it asked for are sent only after its commit.

Views, services and jobs never call commit() or rollback() themselves:
- every view runs inside `step()` (create_app wraps them all with `wrap_views`), whatever the
  status code it returns;
- a view that shows a refusal runs the refused part inside `attempt()`, which undoes that part
  alone (and drops the jobs it queued) before the view renders the reason;
- jobs, and commands that call outside services or handle rows in bulk, commit each step
  with `step()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy.orm import Session, scoped_session

from cases.jobs import pending
from shell.extensions import db


@contextmanager
def step(session: Session | scoped_session | None = None) -> Iterator[Session]:
    """One unit of work: commit if the block finished, roll back if it raised, or if the commit
    itself failed (a flush refused, the connection lost): the session is usable again."""
    session = db.session if session is None else session
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    if _has_work(session):
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _has_work(session: Session | scoped_session) -> bool:
    """Whether a commit would do anything: a request that never made a session (a page served
    from the portal's cache), or whose session began no transaction and holds nothing to write
    and no job, has nothing to commit, and skips the commit's own work."""
    if isinstance(session, scoped_session):
        if not session.registry.has():
            return False
        session = session()
    return bool(
        session.in_transaction()
        or session.new
        or session.dirty
        or session.deleted
        or pending(session)
    )


@contextmanager
def attempt(session: Session | scoped_session | None = None) -> Iterator[Session]:
    """A part of the unit of work that may be refused. If the block raises, what it wrote and
    the jobs it queued are undone and the error goes on to the caller, which shows it; the rest
    of the unit of work stands and commits with it."""
    session = db.session if session is None else session
    real = session() if isinstance(session, scoped_session) else session
    queued = len(pending(real))
    savepoint = real.begin_nested()
    try:
        yield real
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        del pending(real)[queued:]
        raise
    savepoint.commit()


def in_unit_of_work(view: Callable) -> Callable:
    @functools.wraps(view)
    def run(*args, **kwargs):
        with step():
            return view(*args, **kwargs)

    return run


def wrap_views(app: Flask) -> None:
    """Every view of the app, one unit of work each (the static files need none)."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static":
            app.view_functions[endpoint] = in_unit_of_work(view)
