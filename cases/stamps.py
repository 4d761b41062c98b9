"""Version stamps for what the debtor portal shows, changed in the same transaction as the
change itself, so that a page cached under a stamp is never served after that change commits.

A case's stamp changes with every flush that adds, changes or removes the case, its debtor, a
ledger entry, settlement offer, payment plan or installment, dispute or document of the case.
A client's stamp changes with the client (name, terms) and its discount bands. This happens
in an `after_flush` hook on every session, so the domain functions need not remember it; the
few bulk statements that bypass the unit of work call `touch` themselves (see
tests/portal/test_page_cache.py, which also fails on a new, unlisted one)."""

from __future__ import annotations

from collections.abc import Iterable
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
    which = []
    if case_ids:
        which.append(cases.c.id.in_(case_ids))
    if plan_ids:
        plans = PaymentPlan.__table__
        which.append(cases.c.id.in_(sa.select(plans.c.case_id).where(plans.c.id.in_(plan_ids))))
    if debtor_ids:
        which.append(cases.c.debtor_id.in_(debtor_ids))
    if which:
        connection.execute(sa.update(cases).where(sa.or_(*which)).values(stamp=new_stamp()))
    if client_ids:
        clients = Client.__table__
        connection.execute(
            sa.update(clients).where(clients.c.id.in_(client_ids)).values(stamp=new_stamp())
        )


@event.listens_for(Session, "after_flush")
def _stamp_what_changed(session: Session, _flush_context) -> None:
    case_ids, plan_ids, debtor_ids, client_ids = set(), set(), set(), set()
    changed = chain(
        session.new,
        (o for o in session.dirty if session.is_modified(o, include_collections=False)),
        session.deleted,
    )
    for obj in changed:
        if isinstance(obj, CASE_RECORDS):
            case_ids.add(obj.case_id)
        elif isinstance(obj, Installment):
            plan_ids.add(obj.plan_id)
        elif isinstance(obj, OfferBand):
            client_ids.add(obj.client_id)
        elif obj in session.new:
            continue  # a new case, debtor or client: nothing was shown of it before
        elif isinstance(obj, Case):
            case_ids.add(obj.id)
        elif isinstance(obj, Debtor):
            debtor_ids.add(obj.id)
        elif isinstance(obj, Client):
            client_ids.add(obj.id)
    if case_ids or plan_ids or debtor_ids or client_ids:
        touch(
            session,
            case_ids=case_ids,
            plan_ids=plan_ids,
            debtor_ids=debtor_ids,
            client_ids=client_ids,
        )
