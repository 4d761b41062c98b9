"""Offer transitions racing on PostgreSQL in real threads: each happens once, and the loser is
told why (cases.offers locks the offer's row before it checks the status)."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case
from cases.offers import (
    OfferError,
    SettlementOffer,
    accept_offer,
    approve_offer,
    propose_offer,
    withdraw_offer,
)
from shell.extensions import db
from tests.payments.test_concurrency import committed_case  # noqa: F401 (a fixture)

ACTOR = audit.Actor(None, "race")
DAY = dt.date(2026, 11, 20)


def approved_offer(Session, case_id) -> int:
    with Session() as session:
        offer = propose_offer(
            session,
            session.get(Case, case_id),
            amount_cents=85_000,
            expires_on=DAY + dt.timedelta(days=45),  # after the validation period
            max_installments=1,
            today=DAY,
            role="collector",
            actor=ACTOR,
        )
        if offer.status == "proposed":
            approve_offer(session, offer, role="supervisor", actor=ACTOR, today=DAY)
        session.commit()
        return offer.id


def at_once(Session, actions) -> list[str]:
    """Run each action(session, offer) in its own thread and transaction, all at once."""
    outcomes: list[str] = []
    barrier = threading.Barrier(len(actions))

    def worker(action, offer_id):
        with Session() as session:
            offer = session.get(SettlementOffer, offer_id)
            barrier.wait()
            try:
                action(session, offer)
                session.commit()
                outcomes.append("done")
            except OfferError as exc:
                session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=worker, args=a) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def events(Session, offer_id) -> list[str]:
    with Session() as session:
        return list(
            session.scalars(
                sa.select(AuditEvent.action)
                .where(
                    AuditEvent.entity_type == "settlement_offer",
                    AuditEvent.entity_id == str(offer_id),
                )
                .order_by(AuditEvent.id)
            )
        )


def cleanup(app, case_id):
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.case_id == case_id))
        conn.execute(sa.delete(SettlementOffer).where(SettlementOffer.case_id == case_id))


def accept(session, offer):
    accept_offer(session, offer, actor=ACTOR, today=DAY, wording="I accept")


def withdraw(session, offer):
    withdraw_offer(session, offer, role="supervisor", actor=ACTOR, reason="no longer on offer")


def test_six_accepts_at_once_accept_once(app, committed_case):  # noqa: F811
    Session, case_id = committed_case
    offer_id = approved_offer(Session, case_id)
    try:
        outcomes = at_once(Session, [(accept, offer_id)] * 6)
        assert sorted(outcomes) == ["done"] + ["this offer was already accepted"] * 5
        assert events(Session, offer_id).count("offer.accepted") == 1
    finally:
        cleanup(app, case_id)


def test_an_accept_racing_a_withdraw_ends_as_one_of_them_and_says_so(app, committed_case):  # noqa: F811
    Session, case_id = committed_case
    offer_id = approved_offer(Session, case_id)
    try:
        outcomes = at_once(Session, [(accept, offer_id), (withdraw, offer_id)])
        assert outcomes.count("done") == 1
        with Session() as session:
            status = session.get(SettlementOffer, offer_id).status
        trail = [e for e in events(Session, offer_id) if e in ("offer.accepted", "offer.withdrawn")]
        assert trail == [f"offer.{status}"]  # the trail says what the offer is
        loser = next(o for o in outcomes if o != "done")
        assert loser in (
            "this offer was already accepted",
            "this offer is accepted; only open offers can be withdrawn",
            "this offer cannot be accepted",
        )
    finally:
        cleanup(app, case_id)
