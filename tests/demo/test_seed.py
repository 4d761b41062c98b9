"""The demo agency holds together as real data does (`flask demo seed`, demo/seed.py): every
case said to have had its notice has the notice, nothing is dated after now, the months before
the last one have their statements, and each client has cases in the states worth showing.
Seeded small here (a few cases per client; the CLI seeds a hundred) to keep it quick."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy import orm

from cases import audit
from cases.case import Case
from cases.clients import Client
from cases.contacts import Contact
from cases.debtors import Debtor
from cases.disputes import Dispute
from cases.documents import Document
from cases.limitations import is_time_barred
from cases.model import utcnow
from cases.plans import Installment, PaymentPlan
from correspondence.statement_mail import render_statement
from demo.seed import seed
from demo.showcase import SHOWCASE
from payments.posting import LedgerEntry, balances
from payments.statements import Month, Statement, issue, last_ended_month
from shell.cli import demo_paperwork
from shell.document_store import read
from shell.extensions import db
from shell.timezone import agency_today, agency_zone
from tests.conftest import SUITE_DAY, _app_ctx_id

PER_CLIENT = 5


@pytest.fixture(scope="module")
def seeded(app):
    """One small demo agency for the module, seeded on the suite's day in a transaction rolled
    back at the end (as tests/conftest.py's db_session does for one test)."""
    with time_machine.travel(SUITE_DAY, tick=True), app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = orm.scoped_session(
            orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            created = seed(
                db.session, demo_paperwork(), cases_per_client=PER_CLIENT, showcase_per_client=1
            )
            db.session.flush()
            assert created == 3 * (PER_CLIENT + len(SHOWCASE))
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture(autouse=True)
def in_app(app, seeded):
    with app.app_context():
        yield


def test_every_case_said_to_have_had_its_notice_has_the_notice(seeded):
    cases = seeded.scalars(sa.select(Case)).all()
    sent = [c for c in cases if c.validation_sent_at is not None]
    assert sent
    for case in cases:
        notices = seeded.scalars(
            sa.select(Document).where(
                Document.case_id == case.id, Document.kind == "validation_notice"
            )
        ).all()
        if case.validation_sent_at is None:
            assert case.status == "new" and notices == [], case.reference
            continue
        assert len(notices) == 1, case.reference
        assert read(notices[0]).startswith(b"%PDF"), case.reference
        assert case.validation_period_ends_on is not None and case.validation_mailed_on
        letter = seeded.scalars(
            sa.select(Contact).where(
                Contact.case_id == case.id, Contact.subject == "Validation notice"
            )
        ).one()
        assert letter.document_id == notices[0].id
        assert letter.occurred_at == case.validation_sent_at.replace(
            tzinfo=letter.occurred_at.tzinfo
        )


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def test_nothing_is_dated_after_now(seeded):
    now, today = utcnow(), agency_today()
    contacts = seeded.scalars(sa.select(Contact.occurred_at)).all()
    assert contacts and max(_aware(at) for at in contacts) <= now
    disputes = seeded.scalars(sa.select(Dispute.received_at)).all()
    assert disputes and max(_aware(at) for at in disputes) <= now
    assert max(seeded.scalars(sa.select(LedgerEntry.received_at))) <= today
    paid = seeded.scalars(sa.select(Installment.paid_at).where(Installment.paid_at.is_not(None)))
    assert all(_aware(at) <= now for at in paid)
    for debtor in seeded.scalars(sa.select(Debtor)):
        for at in (debtor.cease_requested_at, debtor.attorney_since):
            assert at is None or _aware(at) <= now
    # Nothing after a cease request or once an attorney is known, either.
    for debtor in seeded.scalars(
        sa.select(Debtor).where(
            sa.or_(Debtor.cease_requested_at.is_not(None), Debtor.attorney_since.is_not(None))
        )
    ):
        since = _aware(debtor.cease_requested_at or debtor.attorney_since)
        later = seeded.scalars(
            sa.select(Contact.occurred_at)
            .join(Case, Case.id == Contact.case_id)
            .where(Case.debtor_id == debtor.id)
        ).all()
        assert all(_aware(at) <= since for at in later), debtor.id


def test_the_months_before_the_last_have_their_statements(seeded):
    zone, now = agency_zone(), utcnow()
    last = last_ended_month(zone, now)
    for client in seeded.scalars(sa.select(Client)):
        first = seeded.scalar(
            sa.select(sa.func.min(LedgerEntry.received_at))
            .join(Case, Case.id == LedgerEntry.case_id)
            .where(Case.client_id == client.id)
        )
        months, month = [], Month.of(first)
        while str(month) < str(last):
            months.append(str(month))
            month = month.shift(1)
        issued = seeded.scalars(
            sa.select(Statement.month)
            .where(Statement.client_id == client.id)
            .order_by(Statement.month)
        ).all()
        assert issued == months, client.code

        # The last ended month's statement, issued now, lists that month's money only.
        trial = seeded.begin_nested()
        statement = issue(
            seeded,
            client,
            last,
            zone=zone,
            now=now,
            actor=audit.Actor(None, "test"),
            render_pdf=render_statement,
        ).statement
        late = [line for line in statement.lines if line.late]
        trial.rollback()
        assert late == [], client.code


def test_each_client_has_cases_in_the_states_worth_showing(seeded):
    today = agency_today()
    for client in seeded.scalars(sa.select(Client)):
        cases = seeded.scalars(sa.select(Case).where(Case.client_id == client.id)).all()
        ids = [c.id for c in cases]

        pending = [
            d
            for d in seeded.scalars(sa.select(Dispute).where(Dispute.case_id.in_(ids)))
            if d.within_validation_period
            and d.status == "open"
            and d.verification_document_id is None
        ]
        assert any(seeded.get(Case, d.case_id).status == "disputed" for d in pending)

        declined = seeded.scalars(
            sa.select(Installment)
            .join(PaymentPlan, PaymentPlan.id == Installment.plan_id)
            .where(
                PaymentPlan.case_id.in_(ids),
                PaymentPlan.status == "active",
                PaymentPlan.autopay.is_(True),
                Installment.status == "failed",
                Installment.last_error == "card_declined",
            )
        ).all()
        assert declined and all(i.next_attempt_on > today for i in declined)
        assert all(seeded.get(Case, i.plan.case_id).status == "plan" for i in declined)

        assert any(c.is_open and is_time_barred(seeded, c, today) for c in cases)
        assert any(c.is_open and c.debtor.attorney_name for c in cases)
        assert any(c.is_open and c.debtor.cease_requested_at for c in cases)


def test_balances_add_up_and_paid_cases_owe_nothing(seeded):
    cases = seeded.scalars(sa.select(Case)).all()
    owed = balances(seeded, [c.id for c in cases])
    for case in cases:
        if case.status in ("paid", "settled"):
            assert owed[case.id] == 0, case.reference
        else:
            assert owed[case.id] > 0, case.reference
