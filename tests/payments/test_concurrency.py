"""Payments racing on one case, on PostgreSQL with real transactions in real threads."""

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case, open_case
from cases.clients import Client, create_client
from cases.debtors import Address, Debtor, match_key
from cases.ledger import LedgerEntry, post_placement
from cases.report_totals import (
    ReportAging,
    ReportAssignee,
    ReportCases,
    ReportMoney,
    ReportPromise,
)
from payments.fees import FeeSchedule, FeeTier, parse_tiers, set_schedule
from payments.posting import DuplicatePosting, balance_cents, post_payment
from shell.extensions import db

ACTOR = audit.Actor(None, "race")
THREADS = 8


@pytest.fixture
def committed_case(app, database_url):
    """A case committed for real (the threads need to see it), removed afterwards."""
    if not database_url.startswith("postgres"):
        pytest.skip("row locks under real concurrency are a PostgreSQL matter")
    with app.app_context():
        engine = db.engine
    Session = orm.sessionmaker(bind=engine)
    with Session() as session:
        client = create_client(session, "RACE", "Race Co", actor=ACTOR)
        set_schedule(session, client, parse_tiers("90=2500"), actor=ACTOR)
        debtor = Debtor(
            kind="consumer",
            first_name="R",
            last_name="Ace",
            match_key=match_key("consumer", "R Ace", "10001"),
            addresses=[Address(state="NY", postal_code="10001")],
        )
        session.add(debtor)
        case = open_case(
            session,
            client=client,
            debtor=debtor,
            reference="RC-9912-00001",
            account_number="RACE-1",
            referred_on=dt.date(2026, 11, 1),
            due_date=dt.date(2026, 6, 1),
            actor=ACTOR,
        )
        post_placement(session, case, "principal", 100_000, "race:principal", dt.date(2026, 11, 1))
        session.commit()
        ids = (client.id, debtor.id, case.id)
    yield Session, ids[2]
    with engine.begin() as conn:  # Core deletes: the append-only guards are ORM-level
        client_id, debtor_id, case_id = ids
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.case_id == case_id))
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.actor_label == "race"))
        conn.execute(sa.delete(LedgerEntry).where(LedgerEntry.case_id == case_id))
        conn.execute(sa.delete(Case).where(Case.id == case_id))
        # The reports' totals of the rows deleted behind the app's back (cases.report_totals).
        for total in (ReportMoney, ReportCases, ReportAssignee, ReportAging):
            conn.execute(sa.delete(total).where(total.client_id == client_id))
        conn.execute(sa.delete(ReportPromise).where(ReportPromise.case_id == case_id))
        conn.execute(sa.delete(Address).where(Address.debtor_id == debtor_id))
        conn.execute(sa.delete(Debtor).where(Debtor.id == debtor_id))
        schedules = sa.select(FeeSchedule.id).where(FeeSchedule.client_id == client_id)
        conn.execute(sa.delete(FeeTier).where(FeeTier.schedule_id.in_(schedules)))
        conn.execute(sa.delete(FeeSchedule).where(FeeSchedule.client_id == client_id))
        conn.execute(sa.delete(Client).where(Client.id == client_id))


def race(Session, case_id, amounts_and_ids, **kwargs):
    results, barrier = [], threading.Barrier(len(amounts_and_ids))

    def worker(amount, external_id):
        with Session() as session:
            case = session.get(Case, case_id)
            barrier.wait()
            try:
                post_payment(
                    session,
                    case,
                    amount,
                    external_id=external_id,
                    received_at=dt.date(2026, 11, 20),
                    method="card",
                    actor=ACTOR,
                    **kwargs,
                )
                session.commit()
                results.append("posted")
            except DuplicatePosting:
                session.rollback()
                results.append("duplicate")

    threads = [threading.Thread(target=worker, args=a) for a in amounts_and_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_the_same_external_id_from_eight_threads_posts_once(committed_case):
    Session, case_id = committed_case
    results = race(Session, case_id, [(1_000, "pi_same")] * THREADS)
    assert sorted(results) == ["duplicate"] * (THREADS - 1) + ["posted"]
    with Session() as session:
        assert balance_cents(session, case_id) == 99_000


def test_many_payments_at_once_on_one_case_are_all_kept_exactly(committed_case):
    Session, case_id = committed_case
    results = race(Session, case_id, [(12_500, f"pi_{n}") for n in range(THREADS)])
    assert results == ["posted"] * THREADS
    with Session() as session:
        assert balance_cents(session, case_id) == 0
        assert session.get(Case, case_id).status == "paid"
        fees = session.scalars(
            sa.select(LedgerEntry.fee_cents).where(
                LedgerEntry.case_id == case_id, LedgerEntry.kind == "payment"
            )
        ).all()
        assert fees == [3_125] * THREADS


def test_two_refund_events_of_one_charge_at_once_reverse_the_refunded_total_once(
    committed_case,
):
    from payments.webhooks import StripeEvent, handle_event

    Session, case_id = committed_case
    with Session() as session:
        post_payment(
            session,
            session.get(Case, case_id),
            50_000,
            external_id="pi_refunds",
            received_at=dt.date(2026, 11, 20),
            method="card",
            actor=ACTOR,
        )
        session.commit()
    barrier, errors = threading.Barrier(2), []

    def deliver(total):
        event = {
            "id": f"evt_refund_{total}",
            "type": "charge.refunded",
            "created": 1_795_000_000,
            "data": {
                "object": {
                    "id": "ch_refunds",
                    "payment_intent": "pi_refunds",
                    "amount_refunded": total,
                    "refunds": {"data": []},
                }
            },
        }
        with Session() as session:
            barrier.wait()
            try:
                handle_event(
                    session, event, gateway=None, local_date=lambda _: dt.date(2026, 11, 21)
                )
                session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(t,)) for t in (20_000, 30_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        with Session() as session:
            assert balance_cents(session, case_id) == 100_000 - 50_000 + 30_000
    finally:
        with Session() as session:
            session.execute(sa.delete(StripeEvent).where(StripeEvent.object_id == "ch_refunds"))
            session.commit()


def test_one_payment_event_delivered_many_times_at_once_posts_once_and_is_recorded_once(
    committed_case,
):
    """A new payment's event is recorded after its payment is posted (its case locked first):
    deliveries of one event at once wait on the case's lock, the later ones find the payment
    posted and the event recorded, and write nothing."""
    from payments.webhooks import StripeEvent, handle_event

    Session, case_id = committed_case
    with Session() as session:
        reference, client_id = (
            session.get(Case, case_id).reference,
            session.get(Case, case_id).client_id,
        )
    intent = {
        "id": "pi_many_at_once",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 25_000,
        "currency": "usd",
        "created": 1_795_000_000,
        "metadata": {"case_reference": reference},
    }
    event = {
        "id": "evt_many_at_once",
        "type": "payment_intent.succeeded",
        "created": 1_795_000_000,
        "data": {"object": intent},
    }
    barrier, outcomes, errors = threading.Barrier(THREADS), [], []

    def deliver():
        with Session() as session:
            barrier.wait()
            try:
                outcomes.append(
                    handle_event(
                        session, event, gateway=None, local_date=lambda _: dt.date(2026, 11, 21)
                    )
                )
                session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert sorted(outcomes) == sorted(
            ["posted pi_many_at_once"] + ["duplicate event"] * (THREADS - 1)
        )
        with Session() as session:
            assert balance_cents(session, case_id) == 100_000 - 25_000
            recorded = session.scalars(
                sa.select(StripeEvent.outcome).where(StripeEvent.event_id == "evt_many_at_once")
            ).all()
            assert recorded == ["posted pi_many_at_once"]
            audits = session.scalars(
                sa.select(AuditEvent.action).where(AuditEvent.case_id == case_id)
            ).all()
            assert audits.count("payment.posted") == 1
            paid = session.scalar(
                sa.select(sa.func.sum(ReportMoney.amount_cents)).where(
                    ReportMoney.client_id == client_id, ReportMoney.kind == "agency"
                )
            )
            assert paid == -25_000  # the totals counted it once
    finally:
        with Session() as session:
            session.execute(sa.delete(StripeEvent).where(StripeEvent.object_id == intent["id"]))
            session.commit()
