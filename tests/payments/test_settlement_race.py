"""Payments racing toward one accepted settlement, on PostgreSQL in real threads: the offer is
paid, the rest written off and the case settled exactly once."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case
from cases.documents import Document
from cases.ledger import LedgerEntry
from cases.offers import SettlementOffer, accept_offer, propose_offer
from payments.posting import balance_cents, post_payment
from tests.payments.test_concurrency import THREADS, committed_case  # noqa: F401 (a fixture)

ACTOR = audit.Actor(None, "race")


def test_payments_at_once_settle_once(app, committed_case):  # noqa: F811
    Session, case_id = committed_case
    with Session() as session:
        case = session.get(Case, case_id)
        offer = propose_offer(
            session,
            case,
            amount_cents=85_000,
            expires_on=dt.date(2027, 1, 5),  # after the validation period
            max_installments=8,
            today=dt.date(2026, 11, 20),
            role="collector",
            actor=ACTOR,
        )
        accept_offer(session, offer, actor=ACTOR, today=dt.date(2026, 11, 20), wording="yes")
        session.commit()
        offer_id = offer.id
    errors, barrier = [], threading.Barrier(THREADS)

    def worker(n):
        with app.app_context(), Session() as session:
            case = session.get(Case, case_id)
            barrier.wait()
            try:
                post_payment(
                    session,
                    case,
                    12_500,
                    external_id=f"pi_settle_{n}",
                    received_at=dt.date(2026, 11, 20),
                    method="card",
                    actor=ACTOR,
                    allow_overpayment=True,
                )
                session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        with Session() as session:
            writeoffs = session.scalars(
                sa.select(LedgerEntry).where(
                    LedgerEntry.case_id == case_id, LedgerEntry.kind == "settlement_writeoff"
                )
            ).all()
            # Seven payments reach $850.00 (87,500); the eighth finds the case settled.
            assert [w.amount_cents for w in writeoffs] == [-12_500]
            assert session.get(SettlementOffer, offer_id).status == "paid"
            assert session.get(Case, case_id).status == "settled"
            assert balance_cents(session, case_id) == -12_500  # the eighth: a credit to refund
    finally:
        with app.app_context():
            from shell.extensions import db

            with db.engine.begin() as conn:
                conn.execute(sa.delete(Document).where(Document.case_id == case_id))
                conn.execute(sa.delete(AuditEvent).where(AuditEvent.case_id == case_id))
                conn.execute(sa.delete(SettlementOffer).where(SettlementOffer.case_id == case_id))
