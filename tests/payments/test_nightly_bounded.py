"""The nightly jobs are bounded by what is due, not by the book (issue 21).

Each job runs over a book of 10 due rows and 20 cases with nothing due, then (fresh) over the
same 10 due rows and 300 cases with nothing due: plans not due, promises not due, statements
already sent this month, notices already sent, early-out accounts with nothing due today. The
SQL statements it issues (counted on the engine) and what it does must be the same in both; a
second run the same hour issues only its selection queries and does nothing. On PostgreSQL,
the second run's SELECTs (captured from the job as it ran, with their parameters) are
EXPLAINed with sequential scans off: an index serves each due predicate; so are the first
run's UPDATEs and DELETEs (a stamp or a total kept for a due row reads no more than it).

Here, beside autopay's tests, for localstripe: `plans charge-due` charges for real."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import time_machine
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from bench.nightly import Statements, explain, seq_scans
from cases import audit
from cases.case import Case, open_case
from cases.clients import create_client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.early_out import EarlyOutReminder, parse_cadence, set_terms
from cases.jobs import take_pending
from cases.plans import Installment, PaymentPlan, PromiseToPay
from cases.reminders import SentReminder, check_promises, due_statements
from correspondence.early_out_messages import run_due
from correspondence.notice_run import send_notices
from correspondence.reminder_run import send_due
from payments.autopay import charge_due
from payments.posting import post_placement
from shell.extensions import db
from shell.timezone import agency_zone
from tests.conftest import SUITE_DAY
from tests.payments.test_gateway import VISA, card

ACTOR = audit.Actor(None, "test")
TODAY = SUITE_DAY.date()  # 2026-11-23
# 11:00 in New York: inside the debtors' hours, so the contact rules let the messages go.
AT = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
DUE, SMALL, BIG = 10, 20, 300
# The tables no selection may read whole (with sequential scans off, an index must serve it).
BOOK_TABLES = (
    "cases",
    "debtors",
    "ledger_entries",
    "contacts",
    "installments",
    "promises_to_pay",
    "sent_reminders",
)
NOT_DUE = ("promise_later", "plan_later", "statement_sent", "noticed", "early_out_idle")


@contextmanager
def fresh(app):
    """A session in a transaction of its own, rolled back at the end (as the db_session
    fixture's): one book, built and run, then gone."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = orm.scoped_session(
            orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


class Book:
    """Cases of each kind, built through the services where a job would find them so."""

    def __init__(self, session, stripe):
        self.session = session
        self.stripe = stripe  # (customer, card) at localstripe, or None
        suffix = uuid.uuid4().hex[:6].upper()
        self.client = create_client(session, f"N{suffix}", "Night Co", actor=ACTOR)
        self.early_out = create_client(session, f"E{suffix}", "Night Bakery", actor=ACTOR)
        set_terms(
            session, self.early_out, actor=ACTOR, cadence=parse_cadence("1:email,7:email,15:email")
        )
        self.count = 0

    def case(self, *, status="active", program="collection", due_date=None, noticed=True):
        self.count += 1
        n = self.count
        debtor = Debtor(
            kind="consumer",
            first_name="Pat",
            last_name=f"Night{n}",
            company_name="",
            match_key=match_key("consumer", f"Pat Night{n}", "10001"),
            addresses=[Address(line1=f"{n} Main St", city="Town", state="NY", postal_code="10001")],
            phones=[Phone(number=f"+1212555{n:04d}", type="mobile")],
            emails=[Email(address=f"pat{n}@example.com")],
        )
        self.session.add(debtor)
        early = program == "early_out"
        referred = TODAY - dt.timedelta(days=40)
        case = open_case(
            self.session,
            client=self.early_out if early else self.client,
            debtor=debtor,
            reference=f"RC-N{uuid.uuid4().hex[:12].upper()}",
            account_number=f"N-{n:05d}",
            referred_on=due_date or referred,
            due_date=due_date or referred - dt.timedelta(days=120),
            actor=ACTOR,
            program=program,
            early_out_placed_on=due_date if early else None,
        )
        post_placement(self.session, case, "principal", 90_000, f"n:{case.reference}", referred)
        if noticed and not early:
            case.validation_sent_at = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
            case.validation_mailed_on = dt.date(2026, 10, 1)
            case.validation_period_ends_on = dt.date(2026, 11, 5)
        case.status = status
        return case

    def promise(self, due_on, made=TODAY - dt.timedelta(days=5)):
        case = self.case()
        self.session.add(
            PromiseToPay(
                case_id=case.id,
                amount_cents=10_000,
                due_on=due_on,
                status="open",
                created_at=dt.datetime.combine(made, dt.time(15), dt.UTC),
            )
        )

    def plan(self, due_on, *, autopay=True):
        case = self.case(status="plan")
        customer, card_id = self.stripe or ("cus_none", "pm_none")
        plan = PaymentPlan(
            case_id=case.id,
            total_cents=30_000,
            frequency="monthly",
            autopay=autopay,
            stripe_customer_id=customer if autopay else None,
            stripe_payment_method_id=card_id if autopay else None,
            installments=[
                Installment(seq=seq, due_on=due_on + dt.timedelta(days=30 * k), amount_cents=10_000)
                for k, seq in enumerate((1, 2, 3))
            ],
        )
        self.session.add(plan)

    def statement(self, *, sent: bool):
        case = self.case()
        case.debtor.monthly_statements = True
        if sent:
            self.session.flush()
            key = f"balance_statement:{case.id}:{TODAY:%Y-%m}:email"
            self.session.add(
                SentReminder(key=key, case_id=case.id, kind="balance_statement", channel="email")
            )
            case.statement_month = f"{TODAY:%Y-%m}"  # as the run leaves a case it sent

    def early_out_account(self, age: int, last_day: int):
        case = self.case(status="new", program="early_out", due_date=TODAY - dt.timedelta(age))
        self.session.flush()
        self.session.add(
            EarlyOutReminder(
                case_id=case.id,
                day=last_day,
                channel="email",
                tone="friendly",
                language="en",
                sent_on=TODAY - dt.timedelta(days=age - last_day),
            )
        )

    def add(self, kind: str):
        match kind:
            case "promise_broken":  # due yesterday, nothing paid
                self.promise(TODAY - dt.timedelta(days=1))
            case "promise_soon":  # due in 2 days: its reminder goes today
                self.promise(TODAY + dt.timedelta(days=2))
            case "promise_later":
                self.promise(TODAY + dt.timedelta(days=20))
            case "autopay_due":
                self.plan(TODAY)
            case "installment_soon":  # not on autopay: a reminder 3 days before
                self.plan(TODAY + dt.timedelta(days=3), autopay=False)
            case "plan_later":
                self.plan(TODAY + dt.timedelta(days=15))
            case "statement_due":
                self.statement(sent=False)
            case "statement_sent":
                self.statement(sent=True)
            case "awaiting_notice":
                self.case(status="new", noticed=False)
            case "noticed":
                self.case()
            case "early_out_due":  # day 15 reached today, day 7 sent
                self.early_out_account(15, 7)
            case "early_out_idle":  # day 7 sent, day 15 not yet reached
                self.early_out_account(10, 7)


# Each job: its 10 due rows (by kind), how it runs, and what it did (the outcome compared).
def _promises(session):
    settled = check_promises(session, today=TODAY, zone=agency_zone())
    return {"kept": len(settled["kept"]), "broken": len(settled["broken"])}


def _reminders(session):
    run = send_due(session, TODAY.isoformat())
    return sorted(key.split(":")[0] + ":" + key.rsplit(":", 1)[1] for key in run.sent)


def _notices(session):
    result = send_notices(session, today=TODAY, actor=ACTOR)
    return {"sent": len(result.sent), "held": len(result.held)}


def _early_out(session):
    run = run_due(session, TODAY.isoformat())
    return {"sent": len(run.sent), "converted": len(run.converted), "held": len(run.held)}


JOBS = {
    "promises check": (["promise_broken"] * DUE, _promises),
    "reminders send": (
        ["promise_soon"] * 4 + ["installment_soon"] * 3 + ["statement_due"] * 3,
        _reminders,
    ),
    "plans charge-due": (["autopay_due"] * DUE, None),  # the gateway: in the test
    "notices send": (["awaiting_notice"] * DUE, _notices),
    "earlyout run": (["early_out_due"] * DUE, _early_out),
}
EXPECTED = {
    "promises check": {"kept": 0, "broken": DUE},
    "reminders send": sorted(
        ["promise_due:email"] * 4 + ["installment_due:email"] * 3 + ["balance_statement:email"] * 3
    ),
    "plans charge-due": {"charged": DUE, "failed": 0, "broken": 0, "pending": 0},
    "notices send": {"sent": DUE, "held": 0},
    "earlyout run": {"sent": DUE, "converted": 0, "held": 0},
}
WRITES = ("INSERT", "UPDATE", "DELETE")


def _run_book(app, job, due_kinds, not_due: int, stripe, *, explain_selects: bool):
    """Build a book, run the job twice; the statements of each run, the outcomes, and the
    EXPLAIN of the second run's SELECTs and of the first run's UPDATEs and DELETEs."""
    with fresh(app) as session, time_machine.travel(AT, tick=False):
        book = Book(session, stripe)
        for kind in due_kinds:
            book.add(kind)
        for i in range(not_due):
            book.add(NOT_DUE[i % len(NOT_DUE)])
        session.commit()
        log = Statements(db.engine)
        with log.capture():
            outcome = job(session)
            session.flush()
        first = list(log.seen)
        take_pending(session)  # the deliveries: the mail queue's work, not the job's
        session.commit()
        with log.capture():
            again = job(session)
            session.flush()
        second = list(log.seen)
        plans = []
        if explain_selects:
            connection = session.connection()
            # The second run's selections, and the first run's updates and deletes (a stamp
            # or a total kept for a due row must not read the book either).
            writes = [(s, p) for s, p in first if s.lstrip().upper().startswith(WRITES[1:])]
            for statement, parameters in [*log.selects, *writes]:
                if isinstance(parameters, list | tuple):  # executemany: one row's will do
                    parameters = parameters[0]
                plans.append((statement, explain(connection, statement, parameters, seqscan=False)))
        take_pending(session)
        return first, outcome, second, again, plans


@pytest.mark.parametrize("name", list(JOBS))
def test_a_nightly_job_does_the_same_statements_over_a_book_15_times_bigger(
    app, name, gateway, stripe_api
):
    due_kinds, job = JOBS[name]
    stripe = None
    if name == "plans charge-due":
        customer = gateway.ensure_customer(
            debtor_id=uuid.uuid4().int % 10**9, name="Pat", email=None
        )
        stripe = (customer, card(stripe_api, VISA, customer))

        def job(session):
            run = charge_due(session, gateway, today=TODAY, zone=agency_zone())
            return {
                "charged": len(run.charged),
                "failed": len(run.failed),
                "broken": len(run.broken),
                "pending": len(run.pending),
            }

    on_postgresql = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    small = _run_book(app, job, due_kinds, SMALL, stripe, explain_selects=False)
    big = _run_book(app, job, due_kinds, BIG, stripe, explain_selects=on_postgresql)
    (first_s, outcome_s, second_s, again_s, _), (first_b, outcome_b, second_b, again_b, plans) = (
        small,
        big,
    )

    assert outcome_s == outcome_b == EXPECTED[name]
    assert len(first_s) == len(first_b), (len(first_s), len(first_b))
    # The second run: nothing to do, the same selections whatever the book, no writes.
    assert not any(again_s.values()) if isinstance(again_s, dict) else again_s == []
    assert again_b == again_s
    assert len(second_s) == len(second_b)
    # Only selections (and savepoints): no write, no per-case work.
    assert not [s for s, _ in second_b if s.lstrip().upper().startswith(WRITES)]
    assert len(second_b) <= len(first_b)
    for statement, plan in plans:
        assert not seq_scans(plan, BOOK_TABLES), f"{statement}\n{plan}"
    if on_postgresql:
        assert plans, "the second run's selections were EXPLAINed"


def test_the_statements_selection_reads_only_the_cases_not_yet_sent_this_month(app):
    """The hourly run's statements: however many cases were sent their statement this month,
    the selection reads (through ix_cases_statement_due) only those still due, and a case just
    sent leaves the index's range: on PostgreSQL, EXPLAIN ANALYZE counts the rows it read."""
    with fresh(app) as session, time_machine.travel(AT, tick=False):
        book = Book(session, None)
        for kind in ["statement_due"] * 3 + ["statement_sent"] * 40 + ["noticed"] * 10:
            book.add(kind)
        session.commit()
        asked = session.scalars(
            sa.select(Case.statement_month).where(Case.statement_month.is_not(None))
        ).all()
        assert sorted(asked) == [""] * 3 + [f"{TODAY:%Y-%m}"] * 40
        log = Statements(db.engine)
        with log.capture():
            due = due_statements(session, today=TODAY)
        assert len(due) == 3
        [selection] = [(s, p) for s, p in log.selects if "statement_month" in s]
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            plan = explain(session.connection(), "ANALYZE " + selection[0], selection[1])
            # The cases node (an index scan, or a bitmap heap scan over the index) returns the
            # 3 due, the month in the index condition: the 40 sent this month are not in the
            # range read (the index may also hold dead entries of earlier tests' rollbacks).
            assert "ix_cases_statement_due" in plan, plan
            assert "Index Cond: ((statement_month)::text < " in plan, plan
            read = re.findall(
                r"(?:Index Scan using ix_cases_statement_due on cases|Bitmap Heap Scan on cases)"
                r" .*actual .*rows=(\d+)",
                plan,
            )
            assert read == ["3"], plan
        _reminders(session)
        session.flush()
        assert due_statements(session, today=TODAY) == []
        assert (
            session.scalar(
                sa.select(sa.func.count()).where(Case.statement_month == f"{TODAY:%Y-%m}")
            )
            == 43
        )
