"""What one webhook delivery costs the database: the case locked once, what the posting decides
on read in one statement, a receipt asked for only when there is an address to send it to
(bench/webhook_path.py counts the same on a whole schedule of deliveries)."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
import sqlalchemy as sa

from bench.common import statements_run
from cases.case import Case
from cases.debtors import Email
from cases.jobs import OutboxJob
from payments.fees import current_schedule, parse_tiers, rate_in_force, set_schedule
from payments.posting import (
    Arrived,
    LedgerEntry,
    LedgerError,
    balance_cents,
    lock_case,
    post_arrived,
    post_payment,
)
from shell.extensions import db
from tests.conftest import TEST_ACTOR
from tests.payments.test_gateway import paid_intent
from tests.payments.test_webhooks import deliver, event, outcome, payments


@pytest.fixture
def stripe_app(app, gateway):
    before = app.extensions.get("recourse.gateway")
    app.extensions["recourse.gateway"] = gateway
    yield app
    app.extensions["recourse.gateway"] = before


@contextlib.contextmanager
def statements():
    """The SQL statements run inside the block, whitespace folded (filled as the block ends)."""
    folded: list[str] = []
    with statements_run(db.engine) as seen:
        yield folded
    folded += [" ".join(sql.split()) for sql in seen]


def applying(sqls: list[str]) -> list[str]:
    """The statements that applied the event: not those that kept it in the inbox, took it
    from there and marked it applied (counted in tests/payments/test_stripe_inbox.py and by
    bench/webhook_path.py), nor savepoints."""
    return [
        s for s in sqls if "stripe_inbox" not in s and not s.startswith(("SAVEPOINT", "RELEASE"))
    ]


def reading(sqls: list[str], table: str) -> list[str]:
    return [s for s in applying(sqls) if s.startswith("SELECT") and f" {table}" in s]


def receipts_asked(session, entry_id: int) -> int:
    asked = session.scalars(sa.select(OutboxJob.args).where(OutboxJob.name == "receipts.email"))
    return sum(args == [entry_id] for args in asked)


def whole_intent(stripe_api, intent_id: str) -> dict:
    return stripe_api.v1.payment_intents.retrieve(intent_id).to_dict()


def test_a_new_payment_locks_its_case_once_and_reads_the_ledger_once(
    stripe_app, client, db_session, make_client, make_case, gateway, stripe_api
):
    case = make_case(make_client(), principal=50_000, status="active", email=None)
    intent_id = paid_intent(gateway, stripe_api, case.reference, 12_000)
    succeeded = event("payment_intent.succeeded", whole_intent(stripe_api, intent_id))
    with statements() as sqls:
        deliver(client, succeeded)
    assert outcome(db_session, succeeded) == f"posted {intent_id}"
    # The case by its reference, under its lock, with whether its debtor takes email.
    assert len(reading(sqls, "cases")) == 1
    assert "debtor_emails" in reading(sqls, "cases")[0]
    # The balance, the external id, the fee rate, a plan or offer in force: one statement.
    ledger_reads = [s for s in sqls if s.startswith("SELECT") and "ledger_entries" in s]
    assert len(ledger_reads) == 1
    assert "fee_tiers" in ledger_reads[0] and "payment_plans" in ledger_reads[0]
    assert len([s for s in applying(sqls) if s.startswith("SELECT")]) == 2  # nothing else
    # No email address: no receipt job, no outbox row, no second transaction.
    assert not [s for s in sqls if "job_outbox" in s]
    entry = payments(db_session, case.id)[0]
    assert (entry.amount_cents, entry.fee_cents) == (-12_000, 3_000)
    assert balance_cents(db_session, case.id) == 38_000
    # Again under a new event id: nothing posted twice.
    again = event("payment_intent.succeeded", whole_intent(stripe_api, intent_id))
    deliver(client, again)
    assert outcome(db_session, again) == f"posted {intent_id}"
    assert len(payments(db_session, case.id)) == 1


def test_a_new_payment_is_four_statements_on_postgresql_and_a_resend_one(
    stripe_app, client, db_session, make_client, make_case, gateway, stripe_api
):
    """The case locked with the event's record looked for; the facts; the entry with the
    reports' totals, its audit row and its case's page stamp (one data-modifying CTE on
    PostgreSQL); the event recorded with its outcome. A re-send of the same event: only the
    inbox's INSERT, which finds it there, and nothing applied."""
    from cases.audit import AuditEvent
    from cases.case import Case
    from cases.report_totals import ReportMoney
    from payments.webhooks import StripeEvent

    case = make_case(make_client(), principal=50_000, status="active", email=None)
    intent_id = paid_intent(gateway, stripe_api, case.reference, 12_000)
    db_session.commit()  # the setup's own stamps, outside the count
    stamp = db_session.scalar(sa.select(Case.stamp).where(Case.id == case.id))
    succeeded = event("payment_intent.succeeded", whole_intent(stripe_api, intent_id))
    with statements() as sqls:
        deliver(client, succeeded)
    assert outcome(db_session, succeeded) == f"posted {intent_id}"
    work = applying(sqls)
    if db.engine.dialect.name == "postgresql":
        assert len(work) == 4, work
        assert work[0].startswith("SELECT cases.") and "stripe_events" in work[0]
        assert work[2].startswith("WITH e AS (INSERT INTO ledger_entries")
        for table in ("report_money", "report_assignee", "report_aging", "report_promises"):
            assert table in work[2]
        assert "audit_events" in work[2] and "UPDATE cases SET stamp" in work[2]
        assert work[3].startswith("INSERT INTO stripe_events")
    # What the one statement did, read back.
    recorded = db_session.scalars(
        sa.select(StripeEvent.outcome).where(StripeEvent.event_id == succeeded["id"])
    ).all()
    assert recorded == [f"posted {intent_id}"]
    entry = payments(db_session, case.id)[0]
    audited = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.entity_id == str(entry.id))
    ).all()
    assert [(a.action, a.case_id, a.actor_label) for a in audited] == [
        ("payment.posted", case.id, "stripe")
    ]
    assert audited[0].detail == {"amount_cents": 12_000, "external_id": intent_id}
    money = db_session.scalar(
        sa.select(sa.func.sum(ReportMoney.amount_cents)).where(
            ReportMoney.client_id == case.client_id, ReportMoney.kind == "agency"
        )
    )
    assert money == -12_000
    assert db_session.scalar(sa.select(Case.stamp).where(Case.id == case.id)) != stamp
    # The same event again: kept already, nothing applied.
    with statements() as sqls:
        assert deliver(client, succeeded).json["duplicate"] is True
    work = [s for s in sqls if not s.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(work) == 1 and work[0].startswith("INSERT INTO stripe_inbox"), work
    assert len(payments(db_session, case.id)) == 1
    assert (
        db_session.scalar(sa.select(sa.func.count()).where(StripeEvent.event_id == succeeded["id"]))
        == 1
    )


def test_the_posting_statement_stays_short_enough_for_the_driver_to_keep_it_parsed():
    """psycopg keeps the parsed form of a statement of at most 4,096 bytes and 50 parameters:
    longer, the posting's one statement would be parsed again at every payment (2 ms)."""
    from psycopg import _queries
    from sqlalchemy.dialects.postgresql import psycopg as pg

    from payments.posting import _insert_entry_kept

    for audited in (True, False):
        compiled = _insert_entry_kept(audited).compile(dialect=pg.dialect())
        assert len(str(compiled)) <= _queries.MAX_CACHED_STATEMENT_LENGTH
        assert len(compiled.params) <= _queries.MAX_CACHED_STATEMENT_PARAMS


@pytest.mark.parametrize(
    ("email", "opted_out", "asked"),
    [(None, False, 0), ("pat@example.com", False, 1), ("pat@example.com", True, 0)],
)
def test_a_receipt_is_asked_for_only_when_the_debtor_has_an_address_open_to_email(
    stripe_app,
    client,
    db_session,
    make_client,
    make_case,
    gateway,
    stripe_api,
    email,
    opted_out,
    asked,
):
    case = make_case(make_client(), principal=50_000, status="active", email=email)
    if opted_out:
        db_session.execute(
            sa.update(Email)
            .where(Email.debtor_id == case.debtor_id)
            .values(opted_out_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
        )
    intent_id = paid_intent(gateway, stripe_api, case.reference, 5_000)
    deliver(client, event("payment_intent.succeeded", whole_intent(stripe_api, intent_id)))
    entry = payments(db_session, case.id)[0]
    assert receipts_asked(db_session, entry.id) == asked


def test_a_refund_locks_its_case_once_even_when_it_comes_before_its_payment(
    stripe_app, client, db_session, make_client, make_case, gateway, stripe_api
):
    case = make_case(make_client(), principal=50_000, status="active", email=None)
    intent_id = paid_intent(gateway, stripe_api, case.reference, 10_000)
    charge_id = gateway.retrieve_payment_intent(intent_id).latest_charge_id

    def refunded(total: int) -> dict:
        charge = {"id": charge_id, "payment_intent": intent_id, "amount_refunded": total}
        return event("charge.refunded", {**charge, "refunds": {"data": []}})

    first, second, third = refunded(4_000), refunded(10_000), refunded(10_000)
    with statements() as sqls:  # before the payment's event: the payment is applied first
        deliver(client, first)
    assert outcome(db_session, first) == "reversed 4000"
    assert len(reading(sqls, "cases")) == 1
    with statements() as sqls:
        deliver(client, second)
    assert outcome(db_session, second) == "reversed 6000"
    assert len(reading(sqls, "cases")) == 1
    # What was reversed already is read once, with the rest, under the lock.
    assert len([s for s in sqls if "ledger_entries.reverses_id = " in s]) == 1
    deliver(client, third)
    assert outcome(db_session, third) == "nothing new refunded"
    assert [(e.kind, e.amount_cents, e.fee_cents) for e in payments(db_session, case.id)] == [
        ("payment", -10_000, 2_500),
        ("reversal", 4_000, -1_000),
        ("reversal", 6_000, -1_500),
    ]
    assert balance_cents(db_session, case.id) == 50_000


def test_a_case_is_read_under_its_lock_once_a_transaction_and_again_after_a_rollback(
    db_session, make_client, make_case
):
    case = make_case(make_client())
    db_session.commit()
    db_session.refresh(case)  # loaded again after the commit, outside the count
    with statements() as sqls:
        lock_case(db_session, case)
        lock_case(db_session, case)
    assert len(reading(sqls, "cases")) == 1
    db_session.commit()
    db_session.refresh(case)
    with statements() as sqls:
        savepoint = db_session.begin_nested()
        lock_case(db_session, case)
        savepoint.rollback()  # PostgreSQL lets go of the locks taken inside it
        lock_case(db_session, case)
    assert len(reading(sqls, "cases")) == 2  # taken again after the rollback
    db_session.commit()
    db_session.refresh(case)
    with statements() as sqls:
        lock_case(db_session, case)
    assert len(reading(sqls, "cases")) == 1  # a new transaction locks again


@pytest.mark.parametrize("legal_bps", [None, 4_500])
def test_the_fee_rate_read_with_a_posting_is_the_schedule_s_rate(
    db_session, make_client, legal_bps
):
    client = make_client()
    assert db_session.scalar(sa.select(rate_in_force(-1, 100, False))) == 0  # no schedule
    set_schedule(db_session, client, parse_tiers("90=2500,181=3300,366=4000"), actor=TEST_ACTOR)
    newer = set_schedule(
        db_session, client, parse_tiers("60=2000,120=3000"), actor=TEST_ACTOR, legal_bps=legal_bps
    )
    db_session.flush()
    assert current_schedule(db_session, client.id).id == newer.id
    for days in (0, 59, 60, 61, 119, 120, 121, 365, 366, 5_000):
        for in_legal in (False, True):
            expected = newer.rate_for(days, in_legal)
            got = db_session.scalar(sa.select(rate_in_force(client.id, days, in_legal)))
            assert got == expected, (days, in_legal)


def test_the_fee_rate_read_from_a_case_s_own_columns_is_the_schedule_s_rate(
    db_session, make_client, make_case
):
    """As `post_arrived` reads it for many cases in one statement: each case's client, days
    past due at referral and legal flag, correlated from the cases row."""
    client = make_client()
    schedule = set_schedule(
        db_session, client, parse_tiers("60=2000,120=3000"), actor=TEST_ACTOR, legal_bps=4_500
    )
    cases = []
    for days, in_legal in ((0, False), (61, False), (121, False), (121, True)):
        case = make_case(client)
        case.days_past_due_at_referral, case.in_legal = days, in_legal
        cases.append(case)
    db_session.flush()
    got = dict(
        db_session.execute(
            sa.select(
                Case.id,
                rate_in_force(Case.client_id, Case.days_past_due_at_referral, Case.in_legal),
            ).where(Case.id.in_([c.id for c in cases]))
        ).all()
    )
    assert got == {c.id: schedule.rate_for(c.days_past_due_at_referral, c.in_legal) for c in cases}


def test_payments_posted_together_are_posted_as_one_by_one(db_session, make_client, make_case):
    """`post_arrived`: two payments on one case go one after the other (the second sees the
    first), a payment already in the ledger is skipped (None) and changes nothing, the case
    whose balance they pay is paid; the ledger is exact."""
    client = make_client()
    first, second = make_case(client, principal=30_000), make_case(client, principal=50_000)
    for case in (first, second):
        case.status = "active"
    post_payment(
        db_session,
        second,
        5_000,
        external_id="pi_already",
        received_at=dt.date(2026, 11, 20),
        method="card",
        actor=TEST_ACTOR,
    )
    db_session.commit()
    day = dt.date(2026, 11, 22)
    posted = post_arrived(
        db_session,
        [
            Arrived(first.id, 20_000, "pi_one", day),
            Arrived(second.id, 5_000, "pi_already", day),
            Arrived(first.id, 10_000, "pi_two", day),
            Arrived(second.id, 1_000, "pi_three", day),
        ],
        method="card",
        actor=TEST_ACTOR,
    )
    db_session.commit()

    entries = [entry for entry, _ in posted]
    assert entries[1] is None  # posted already: not twice
    assert [e.external_id for e in entries if e] == ["pi_one", "pi_two", "pi_three"]
    assert (balance_cents(db_session, first.id), balance_cents(db_session, second.id)) == (
        0,
        44_000,
    )
    db_session.refresh(first)
    db_session.refresh(second)
    assert (first.status, second.status) == ("paid", "active")
    with pytest.raises(LedgerError):
        post_arrived(
            db_session, [Arrived(first.id, 0, "pi_zero", day)], method="card", actor=TEST_ACTOR
        )


def test_one_external_id_twice_in_one_batch_is_posted_once(db_session, make_client, make_case):
    """The same payment given twice, on two cases, in one `post_arrived`: the first is
    posted, the second meets it in the ledger (None) and changes nothing."""
    client = make_client()
    first, second = make_case(client, principal=30_000), make_case(client, principal=50_000)
    db_session.commit()
    day = dt.date(2026, 11, 22)
    posted = post_arrived(
        db_session,
        [Arrived(first.id, 2_000, "pi_same", day), Arrived(second.id, 2_000, " pi_same ", day)],
        method="card",
        actor=TEST_ACTOR,
    )
    db_session.commit()
    assert posted[0][0] is not None and posted[0][0].external_id == "pi_same"
    assert posted[1][0] is None
    assert (balance_cents(db_session, first.id), balance_cents(db_session, second.id)) == (
        28_000,
        50_000,
    )
    assert (
        db_session.scalar(sa.select(sa.func.count()).where(LedgerEntry.external_id == "pi_same"))
        == 1
    )
