"""What a batch of autopay charges costs in SQL statements (issue 21), and that the batch
writes what the charges one by one wrote: `plans charge-due` over a batch of 10 installments
due, against localstripe.

A charge used to cost about 14 statements of its own (the case locked and read, what the
posting decides on, the entry, four report totals, its audit event, the plan's settlement
read twice, the debtor's email, the receipt's outbox row, its installment's audit event), and
another 26 when the receipts ran in-process. The batch now writes the payments together
(`payments.posting.post_arrived`): the cases locked in one statement, their facts in one, the
entries in one INSERT, the totals in theirs, the audit events in one INSERT each for the
payments and the installments, the receipts' outbox rows in one."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import time_machine
from flask.globals import app_ctx

from cases import report_totals
from cases.audit import AuditEvent
from cases.case import Case
from cases.jobs import OutboxJob, take_pending
from cases.plans import Installment, PaymentPlan
from payments.autopay import BATCH, charge_due
from payments.posting import LedgerEntry
from shell.extensions import db
from shell.timezone import agency_zone
from tests.payments.test_gateway import VISA, card
from tests.payments.test_nightly_bounded import AT, TODAY, Book, fresh
from tests.payments.test_report_totals import _snapshot

# Every statement of a run charging one batch of BATCH (10) installments: the selection, the
# claim (advisory locks on PostgreSQL), the load, the claim's UPDATE and stamps, the commit;
# after Stripe: the load, the cases locked, their facts, the entries, 4 report totals, the
# payments' audit events, the plans' money received, the receipts' outbox rows, the
# installments' UPDATE, their audit events, the stamps; then the plans to break or lapse.
# Without Redis the receipts run in-process after the commit (counted apart, not here); with
# it, the commit marks them sent in the outbox (one UPDATE).
STATEMENTS = {"sqlite": 23, "postgresql": 26}
WAS = 13.8  # statements a charge before (PostgreSQL with Redis: 138 for this run; SQLite 143)


def _own_statements(engine):
    """The statements issued in this app context (not in the in-process jobs' own contexts)."""
    ours, seen = app_ctx._get_current_object(), []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if app_ctx._get_current_object() is ours and not statement.startswith(
            ("SAVEPOINT", "RELEASE")  # the test's transaction around the run
        ):
            seen.append(statement)

    return seen, listen


def test_a_batch_of_autopay_charges_costs_a_few_statements_and_writes_every_charge(
    app, gateway, stripe_api, redis_url
):
    customer = gateway.ensure_customer(debtor_id=uuid.uuid4().int % 10**9, name="Pat", email=None)
    with fresh(app) as session, time_machine.travel(AT, tick=False):
        book = Book(session, (customer, card(stripe_api, VISA, customer)))
        for kind in ["autopay_due"] * BATCH + ["plan_later"] * 3:
            book.add(kind)
        session.commit()
        report_totals.rebuild(session)  # totals that match this book (rolled back after)
        session.commit()
        due = session.scalars(
            sa.select(Installment.id).where(Installment.due_on == TODAY).order_by(Installment.id)
        ).all()
        case_ids = session.scalars(
            sa.select(PaymentPlan.case_id).join(Installment).where(Installment.id.in_(due))
        ).all()
        stamps = dict(
            session.execute(sa.select(Case.id, Case.stamp).where(Case.id.in_(case_ids))).all()
        )
        seen, listen = _own_statements(db.engine)
        sa.event.listen(db.engine, "before_cursor_execute", listen)
        try:
            run = charge_due(session, gateway, today=TODAY, zone=agency_zone())
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)
        take_pending(session)

        assert sorted(run.charged) == due and not (run.failed or run.pending)
        expected = STATEMENTS[db.engine.dialect.name] + (1 if redis_url else 0)
        assert len(seen) == expected, "\n".join(s.split("\n")[0][:100] for s in seen)
        assert len(seen) / BATCH < WAS / 4
        # Every charge written as before: the installment paid with its PaymentIntent, one
        # payment in the ledger for it, one audit event for each, one receipt queued for each.
        installments = session.scalars(sa.select(Installment).where(Installment.id.in_(due))).all()
        intents = {i.id: i.payment_intent_id for i in installments if i.status == "paid"}
        assert sorted(intents) == due
        payments = session.execute(
            sa.select(LedgerEntry.external_id, LedgerEntry.amount_cents, LedgerEntry.id).where(
                LedgerEntry.case_id.in_(case_ids), LedgerEntry.kind == "payment"
            )
        ).all()
        assert sorted(p.external_id for p in payments) == sorted(intents.values())
        assert {p.amount_cents for p in payments} == {-10_000}
        actions = session.execute(
            sa.select(AuditEvent.action, AuditEvent.entity_id, AuditEvent.case_id).where(
                AuditEvent.case_id.in_(case_ids),
                AuditEvent.action.in_(["payment.posted", "installment.paid"]),
            )
        ).all()
        assert sorted(a.entity_id for a in actions if a.action == "installment.paid") == sorted(
            str(i) for i in due
        )
        assert sorted(a.entity_id for a in actions if a.action == "payment.posted") == sorted(
            str(p.id) for p in payments
        )
        receipts = session.scalars(
            sa.select(OutboxJob.args).where(OutboxJob.name == "receipts.email")
        ).all()
        assert sorted(p.id for p in payments) == sorted(
            a[0] for a in receipts if a[0] in {p.id for p in payments}
        )
        # The reports' totals are what a rebuild from the ledger makes, and every case's page
        # stamp changed.
        kept = _snapshot(session)
        report_totals.rebuild(session)
        assert _snapshot(session) == kept
        now = dict(
            session.execute(sa.select(Case.id, Case.stamp).where(Case.id.in_(case_ids))).all()
        )
        assert all(now[i] != stamps[i] for i in case_ids)
