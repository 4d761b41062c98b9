"""Version stamps for what the debtor portal shows, changed in the same transaction as the
change itself, so that a page cached under a stamp is never served after that change commits.

A case's stamp changes with every flush that adds, changes or removes the case, its debtor, a
ledger entry, settlement offer, payment plan or installment, dispute or document of the case.
A client's stamp changes with the client (name, terms) and its discount bands. Hooks on every
session do this, so the domain functions need not remember it: each flush notes what it
changed, and the transaction's commit stamps it all in one statement (one per table), however
many flushes came before. The posting functions, which insert a ledger entry without a flush,
stamp its case in the same statement on PostgreSQL (`restamp`) and `note` it on SQLite. The few bulk statements that bypass the unit of work call `touch`
themselves (see tests/portal/test_page_cache.py, which also fails on a new, unlisted one)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from cases.case import Case
from cases.clients import Client
from cases.debtors import Debtor
from cases.disputes import Dispute
from cases.documents import Document
from cases.ledger import LedgerEntry
from cases.model import new_stamp
from cases.offers import OfferBand, SettlementOffer
from cases.plans import Installment, PaymentPlan

CASE_RECORDS = (LedgerEntry, SettlementOffer, PaymentPlan, Dispute, Document)
_NOTED = "recourse.stamps.noted"  # in session.info: what this transaction's flushes changed


@dataclass
class _Changed:
    case_ids: set[int] = field(default_factory=set)
    plan_ids: set[int] = field(default_factory=set)
    debtor_ids: set[int] = field(default_factory=set)
    client_ids: set[int] = field(default_factory=set)
    committing: bool = False  # stamped already: a later flush in this commit stamps at once


def touch(
    session: Session,
    *,
    case_ids: Iterable[int] = (),
    plan_ids: Iterable[int] = (),
    debtor_ids: Iterable[int] = (),
    client_ids: Iterable[int] = (),
) -> None:
    """New stamps for these cases (and the cases of these plans and debtors) and clients."""
    case_ids, plan_ids, debtor_ids, client_ids = (
        sorted(set(ids) - {None}) for ids in (case_ids, plan_ids, debtor_ids, client_ids)
    )
    connection = session.connection()
    cases = Case.__table__
    # The cases of these plans and debtors, each an index lookup, gathered with these cases
    # into one set: an OR of the three would read the whole book (PostgreSQL cannot look a case
    # up by a subquery inside an OR: it scans `cases` and tests each row).
    which = []
    if plan_ids:
        plans = PaymentPlan.__table__
        which.append(sa.select(plans.c.case_id).where(plans.c.id.in_(plan_ids)))
    if debtor_ids:
        which.append(sa.select(cases.c.id).where(cases.c.debtor_id.in_(debtor_ids)))
    if which and case_ids:
        which.append(sa.select(cases.c.id).where(cases.c.id.in_(case_ids)))
    if which:
        stamped = cases.c.id.in_(sa.union(*which) if len(which) > 1 else which[0])
        connection.execute(sa.update(cases).where(stamped).values(stamp=new_stamp()))
    elif case_ids:
        connection.execute(
            sa.update(cases).where(cases.c.id.in_(case_ids)).values(stamp=new_stamp())
        )
    if client_ids:
        clients = Client.__table__
        connection.execute(
            sa.update(clients).where(clients.c.id.in_(client_ids)).values(stamp=new_stamp())
        )


def restamp(case_ids: sa.Select) -> sa.Update:
    """New stamps (bound: `case_stamp`, one `new_stamp()`) for the cases `case_ids` selects: for a
    statement that changes them without a flush to stamp them itself, in the same statement
    (the posting functions' ledger insert on PostgreSQL)."""
    cases = Case.__table__
    return sa.update(cases).where(cases.c.id.in_(case_ids)).values(stamp=sa.bindparam("case_stamp"))


def note(session: Session, *, case_ids: Iterable[int]) -> None:
    """These cases changed without a flush (a ledger entry inserted in one statement): their
    stamps change at the commit, with what the flushes changed (at once during it)."""
    noted = session.info.setdefault(_NOTED, _Changed())
    if noted.committing:
        touch(session, case_ids=case_ids)
    else:
        noted.case_ids.update(case_ids)


@event.listens_for(Session, "after_flush")
def _note_what_changed(session: Session, _flush_context) -> None:
    noted = session.info.setdefault(_NOTED, _Changed())
    new = session.new  # built anew at each access: once here, not once per object (O(n²))
    changed = chain(
        new,
        (o for o in session.dirty if session.is_modified(o, include_collections=False)),
        session.deleted,
    )
    now = _Changed() if noted.committing else noted
    for obj in changed:
        if isinstance(obj, CASE_RECORDS):
            now.case_ids.add(obj.case_id)
        elif isinstance(obj, Installment):
            now.plan_ids.add(obj.plan_id)
        elif isinstance(obj, OfferBand):
            now.client_ids.add(obj.client_id)
        elif obj in new:
            continue  # a new case, debtor or client: nothing was shown of it before
        elif isinstance(obj, Case):
            now.case_ids.add(obj.id)
        elif isinstance(obj, Debtor):
            now.debtor_ids.add(obj.id)
        elif isinstance(obj, Client):
            now.client_ids.add(obj.id)
    if noted.committing:
        _stamp(session, now)


@event.listens_for(Session, "before_commit")
def _stamp_what_changed(session: Session) -> None:
    """The transaction commits: flush what is pending, then stamp everything its flushes
    changed. (A savepoint's release is not a commit: the transaction's own commit stamps.)"""
    if session.in_nested_transaction():
        return
    session.flush()
    noted = session.info.setdefault(_NOTED, _Changed())
    _stamp(session, noted)
    noted.committing = True


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None:  # committed (stamped) or rolled back (nothing to stamp)
        session.info.pop(_NOTED, None)


def _stamp(session: Session, changed: _Changed) -> None:
    if changed.case_ids or changed.plan_ids or changed.debtor_ids or changed.client_ids:
        touch(
            session,
            case_ids=changed.case_ids,
            plan_ids=changed.plan_ids,
            debtor_ids=changed.debtor_ids,
            client_ids=changed.client_ids,
        )
        for ids in (changed.case_ids, changed.plan_ids, changed.debtor_ids, changed.client_ids):
            ids.clear()
