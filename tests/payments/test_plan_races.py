"""Plan transitions racing on PostgreSQL in real threads: a debtor confirming moved dates in
two tabs confirms once (cases.plans locks the plan's row before it checks its status)."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.case import Case
from cases.documents import Document
from cases.plans import Installment, PaymentPlan, PlanError, confirm_new_dates, create_plan
from shell.extensions import db
from tests.payments.test_concurrency import committed_case  # noqa: F401 (a fixture)

ACTOR = audit.Actor(None, "race")
DAY = dt.date(2026, 11, 20)


def test_two_confirmations_at_once_confirm_once(app, committed_case):  # noqa: F811
    Session, case_id = committed_case
    with Session() as session:
        case = session.get(Case, case_id)
        case.status = "active"
        plan = create_plan(
            session,
            case,
            frequency="monthly",
            count=4,
            first_on=DAY,
            today=DAY,
            actor=ACTOR,
        )
        plan.status, plan.reconfirm_by = "paused", DAY + dt.timedelta(days=10)  # dates moved
        session.commit()
        plan_id = plan.id
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def confirm():
        with Session() as session:
            found = session.get(PaymentPlan, plan_id)
            barrier.wait()
            try:
                confirm_new_dates(session, found, text="I agree", today=DAY, actor=ACTOR)
                session.commit()
                outcomes.append("confirmed")
            except PlanError as exc:
                session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["confirmed", "this plan has no new dates to confirm"]
        with Session() as session:
            events = session.scalars(
                sa.select(AuditEvent.action).where(
                    AuditEvent.entity_type == "payment_plan", AuditEvent.entity_id == str(plan_id)
                )
            ).all()
        assert events.count("plan.confirmed") == 1
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.delete(AuditEvent).where(AuditEvent.case_id == case_id))
            conn.execute(sa.delete(Document).where(Document.case_id == case_id))
            conn.execute(sa.delete(Installment).where(Installment.plan_id == plan_id))
            conn.execute(sa.delete(PaymentPlan).where(PaymentPlan.id == plan_id))
