"""The first day a case has a promise or plan to chase: `cases.chase_from`, kept with every
flush that changes a promise to pay or a payment plan, so that the collector's queue reads the
cases of its first two buckets (a promise due today; a broken promise or plan) from a short
range of an index (`ix_cases_chase`) instead of joining the collector's whole book with the
agency's promises and plans (cases.queue, issue 21).

`chase_from` is the earliest of:

- each open promise's due date (the queue's bucket 0 on that day, bucket 1 after it);
- the day after each broken promise's due date (bucket 1 counts a broken promise once its due
  date is past: the nightly `promises check` breaks one only then);
- BROKEN_PLAN, 1970-01-01, when the case has a broken plan (bucket 1 from the day it broke,
  for good: a day before any "today" and any promise's due date);

NULL when the case has none of these. So on any day `today`, a case is in bucket 0 or 1
exactly when `chase_from <= today`: in bucket 0 when it also has an open promise due today,
else in bucket 1. The value does not depend on the case's status or assignee (the queue
filters those itself), nor on the day it is read.

A hook on every session (`watch`, called once by `cases.plans`) recomputes it, in one UPDATE
per flush, for the cases whose promises or plans that flush added, changed (status, due date,
case) or deleted in a way that can move it: the domain functions (recording a promise, the
nightly check that keeps or breaks it, a plan broken, lapsed, cancelled, completed or put
right) need not remember it. A bulk statement on promises or plans that bypasses the unit of
work must call `refresh` itself (tests/cases/test_chase_from.py fails on a new, unlisted one);
the benchmarks' COPY fills run `refresh_statement(None)` (bench.book.finish), and after a load
that bypassed the app `flask promises chase-rebuild` recomputes it for every case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from cases.case import Case

BROKEN_PLAN = dt.date(1970, 1, 1)
CHASED_PROMISES = ("open", "broken")  # the promise statuses that count
CHUNK = 5000  # case ids per statement


class day_after(FunctionElement):  # noqa: N801 (an SQL function's name)
    """The day after a date column, in SQL, on both databases."""

    type = sa.Date()
    name = "day_after"
    inherit_cache = True


@compiles(day_after)
def _day_after(element, compiler, **kw) -> str:
    return f"({compiler.process(element.clauses, **kw)} + 1)"


@compiles(day_after, "sqlite")
def _day_after_sqlite(element, compiler, **kw) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+1 day')"


class _Models:
    """The promise and plan tables, given by `cases.plans` (which imports this module)."""

    promise: type | None = None
    plan: type | None = None


def chase_from_of(case_id) -> sa.ColumnElement[dt.date]:
    """SQL for the `chase_from` of the case whose id is `case_id` (a column or a value)."""
    promises, plans = _Models.promise.__table__, _Models.plan.__table__
    day = sa.case(
        (promises.c.status == "open", promises.c.due_on), else_=day_after(promises.c.due_on)
    )
    first_promise = (
        sa.select(sa.func.min(day))
        .where(promises.c.case_id == case_id, promises.c.status.in_(CHASED_PROMISES))
        .scalar_subquery()
    )
    broken_plan = sa.exists().where(plans.c.case_id == case_id, plans.c.status == "broken")
    return sa.case((broken_plan, sa.literal(BROKEN_PLAN, sa.Date)), else_=first_promise)


def refresh_statement(case_ids) -> sa.Update:
    """The UPDATE that sets `chase_from` of the cases given (an expanding bind parameter, a
    list, or None for every case with a promise or broken plan: the migration's and the
    benchmarks' fill)."""
    cases = Case.__table__
    if case_ids is None:
        which = cases.c.id.in_(_candidates())
    else:
        which = cases.c.id.in_(case_ids)
    return sa.update(cases).where(which).values(chase_from=chase_from_of(cases.c.id))


def _candidates() -> sa.CompoundSelect:
    """The ids of the cases with an open or broken promise or a broken plan."""
    promises, plans = _Models.promise.__table__, _Models.plan.__table__
    return sa.union(
        sa.select(promises.c.case_id).where(promises.c.status.in_(CHASED_PROMISES)),
        sa.select(plans.c.case_id).where(plans.c.status == "broken"),
    )


def rebuild(session: Session) -> int:
    """Recompute every case's `chase_from` (after promises or plans were loaded behind the
    app's back: `flask promises chase-rebuild`); how many cases have one."""
    connection = session.connection()
    connection.execute(refresh_statement(None))
    cases = Case.__table__
    connection.execute(
        sa.update(cases)
        .where(cases.c.chase_from.is_not(None), cases.c.id.not_in(_candidates()))
        .values(chase_from=None)
    )
    return connection.scalar(
        sa.select(sa.func.count()).select_from(cases).where(cases.c.chase_from.is_not(None))
    )


_REFRESH: list[sa.Update] = []  # built once (the hook runs it on every promise's flush)


def refresh(session: Session, case_ids: Iterable[int]) -> None:
    """Recompute `chase_from` of these cases from their promises and plans as they are now."""
    ids = sorted(set(case_ids) - {None})
    if not ids:
        return
    if not _REFRESH:
        _REFRESH.append(refresh_statement(sa.bindparam("case_ids", expanding=True)))
    connection = session.connection()
    for start in range(0, len(ids), CHUNK):
        connection.execute(_REFRESH[0], {"case_ids": ids[start : start + CHUNK]})


# --- kept in the unit of work -----------------------------------------------------------------

_REFRESHED = "recourse.chase.refreshed"  # in session.info: case ids to expire after the flush


def _before_and_after(obj, name: str) -> set:
    """An attribute's values before and after this flush (one value when unchanged)."""
    history = sa.inspect(obj).attrs[name].history
    return {*history.deleted, *history.added, *history.unchanged} or {getattr(obj, name)}


def _moved(obj, counted: tuple[str, ...], watched: tuple[str, ...] | None) -> set[int]:
    """The cases whose `chase_from` a promise or plan added or deleted (`watched` None) or
    changed may have moved in this flush: its case (and its case before), if its status counts
    before or after and, for a change, something watched changed."""
    if watched is not None:
        attrs = sa.inspect(obj).attrs
        if not any(attrs[name].history.has_changes() for name in watched):
            return set()
    if not _before_and_after(obj, "status") & set(counted):
        return set()
    return _before_and_after(obj, "case_id")


def _after_flush(session: Session, _flush_context) -> None:
    promise, plan = _Models.promise, _Models.plan
    rules = {
        promise: (CHASED_PROMISES, ("status", "due_on", "case_id")),
        plan: (("broken",), ("status", "case_id")),
    }
    moved: set[int] = set()
    for objects, changed in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for obj in objects:
            rule = rules.get(type(obj))
            if rule is not None:
                moved |= _moved(obj, rule[0], rule[1] if changed else None)
    if moved:
        refresh(session, moved)
        session.info.setdefault(_REFRESHED, set()).update(moved)


def _after_flush_postexec(session: Session, _flush_context) -> None:
    """The cases loaded in this session whose column changed: read again when next asked."""
    refreshed = session.info.pop(_REFRESHED, None)
    if not refreshed:
        return
    for key, obj in list(session.identity_map.items()):
        if key[0] is Case and obj.id in refreshed:
            session.expire(obj, ["chase_from"])


def watch(promise_model, plan_model) -> None:
    """Keep `chase_from` with every flush of every session (called once, by `cases.plans`)."""
    _Models.promise, _Models.plan = promise_model, plan_model
    # First of the flush hooks (insert): the case's row is locked before the reports' rows
    # (cases.report_totals), in the order the posting functions lock them (the case first), so
    # the nightly `promises check` and a payment on the same case wait for each other rather
    # than deadlock.
    event.listen(Session, "after_flush", _after_flush, insert=True)
    event.listen(Session, "after_flush_postexec", _after_flush_postexec)
