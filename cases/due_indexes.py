"""The partial indexes of what the nightly jobs find due (issue 21: bounded by what is due,
not by the book). Each holds only the rows its job's selection can want, so a run reads the
due rows and not the book; docs/operations.md says which job reads which.

Declared here, beside the tables they index, so that they are in the metadata the migrations
are compared with (migrations 6d1e2f3a4b5c and f5a1c3e7b9d2 make them); cases.reminders imports this module."""

from __future__ import annotations

import sqlalchemy as sa

from cases.case import Case
from cases.debtors import Debtor
from cases.plans import Installment, PaymentPlan, PromiseToPay


def _partial(name: str, *columns, where: str) -> sa.Index:
    return sa.Index(name, *columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))


# Which of these the jobs use (the selection queries, in the module named):
INDEXES = (
    # cases.reminders.settleable: open promises past due (promises check, reminders send).
    _partial("ix_promises_to_pay_open_due", PromiseToPay.due_on, where="status = 'open'"),
    # payments.autopay.due_installments, cases.plans.overdue_plans, cases.reminders and the
    # early-out plans' review: installments not paid, by status and due date.
    _partial(
        "ix_installments_unpaid_due",
        Installment.status,
        Installment.due_on,
        where="status IN ('scheduled', 'processing', 'failed', 'missed')",
    ),
    # Plans in force by case (autopay, reminders, early-out's "on a plan"), paused plans
    # awaiting the debtor's confirmation by their last day (autopay's lapse).
    _partial("ix_payment_plans_active", PaymentPlan.case_id, where="status = 'active'"),
    _partial("ix_payment_plans_paused", PaymentPlan.reconfirm_by, where="status = 'paused'"),
    # The debtors who asked for a monthly statement (the migration's backfill, the bench).
    _partial("ix_debtors_monthly_statements", Debtor.id, where="monthly_statements"),
    # cases.reminders.due_statements: the cases of those debtors, in the statuses a statement
    # goes to, by the month of their last statement (migration f5a1c3e7b9d2); the run reads the
    # range before this month: only the cases not yet sent this month.
    _partial(
        "ix_cases_statement_due",
        Case.statement_month,
        where="statement_month IS NOT NULL AND status IN ('active', 'plan', 'disputed')",
    ),
    # correspondence.notice_run.waiting_cases and the overdue-notice alert: new cases with no
    # validation notice yet (by program, then first communication).
    _partial(
        "ix_cases_awaiting_notice",
        Case.program,
        Case.first_communication_at,
        where="status = 'new' AND validation_sent_at IS NULL",
    ),
    # The not-mailed alert: notices handed over and not yet confirmed as mailed.
    _partial(
        "ix_cases_notice_unmailed",
        Case.validation_sent_at,
        where="validation_sent_at IS NOT NULL AND validation_mailed_on IS NULL",
    ),
    # The early-out run: each client's open early-out accounts by due date.
    _partial(
        "ix_cases_early_out_open",
        Case.client_id,
        Case.due_date,
        where="program = 'early_out' AND status = 'new'",
    ),
)
