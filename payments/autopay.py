"""Autopay: charging due plan installments off-session from the saved card, never twice.

Each attempt has an idempotency key (`installment-{id}-attempt-{n}`) that is committed before
Stripe hears of it. An installment found `processing` on a later run was interrupted between
the call and the commit: its PaymentIntent is looked up by that key in Stripe's metadata and
its outcome used, and the card is charged only when Stripe has none (localstripe ignores
idempotency keys, so this lookup is what keeps a rerun from charging again).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit, stamps
from cases.case import Case
from cases.jobs import enqueue
from cases.plans import (
    BREAK_AFTER_DAYS,
    RETRY_AFTER_DAYS,
    Installment,
    PaymentPlan,
    break_plan,
    mark_paid,
    overdue_plans,
)
from payments.gateway import GatewayError, PaymentGateway, PaymentIntentInfo
from payments.webhooks import apply_succeeded_intent

log = logging.getLogger(__name__)
AUTOPAY = audit.Actor(None, "autopay")


@dataclass
class ChargeRun:
    today: dt.date
    charged: list[int] = field(default_factory=list)  # installment ids
    failed: list[int] = field(default_factory=list)
    needs_authentication: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # Stripe unreachable or still processing
    broken: list[int] = field(default_factory=list)  # plan ids

    def as_json(self) -> dict:
        return {
            "as_of": self.today.isoformat(),
            "charged": len(self.charged),
            "failed": len(self.failed),
            "needs_authentication": len(self.needs_authentication),
            "pending": len(self.pending),
            "broken": len(self.broken),
        }


def due_installments(session: Session, today: dt.date) -> list[int]:
    """Ids of autopay installments to charge today: due and not yet tried, due for a retry, or
    interrupted mid-attempt. One 10 days past due is not charged: its plan is broken."""
    cutoff = today - dt.timedelta(days=BREAK_AFTER_DAYS)
    return list(
        session.scalars(
            sa.select(Installment.id)
            .join(PaymentPlan)
            .where(
                PaymentPlan.status == "active",
                PaymentPlan.autopay.is_(True),
                PaymentPlan.stripe_payment_method_id.is_not(None),
                sa.or_(
                    Installment.status == "processing",
                    sa.and_(
                        Installment.due_on > cutoff,
                        sa.or_(
                            sa.and_(Installment.status == "scheduled", Installment.due_on <= today),
                            sa.and_(
                                Installment.status == "failed",
                                Installment.next_attempt_on.is_not(None),
                                Installment.next_attempt_on <= today,
                            ),
                        ),
                    ),
                ),
            )
            .order_by(Installment.due_on, Installment.id)
        )
    )


def _claim(session: Session, installment: Installment) -> bool:
    """Start a new attempt, if no other run started one since we read it."""
    claimed = session.execute(
        sa.update(Installment)
        .where(
            Installment.id == installment.id,
            Installment.attempts == installment.attempts,
            Installment.status.in_(("scheduled", "failed")),
        )
        .values(
            attempts=Installment.attempts + 1,
            status="processing",
            next_attempt_on=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    stamps.touch(session, plan_ids=[installment.plan_id])  # a bulk update: no flush hook
    session.commit()  # the key is on record before Stripe is called
    session.refresh(installment)
    return claimed == 1


def _existing(gateway: PaymentGateway, reference: str, key: str) -> PaymentIntentInfo | None:
    found = gateway.find_payment_intents(case_reference=reference, idempotency_key=key)
    if not found:
        return None
    return next((i for i in found if i.succeeded), found[-1])


def charge_installment(
    session: Session,
    gateway: PaymentGateway,
    installment_id: int,
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
    after_charge=None,
) -> None:
    """One installment: start (or resume) its attempt, charge or reconcile, record the outcome,
    commit. `after_charge` is a test hook called between Stripe's answer and our commit."""
    installment = session.get(Installment, installment_id)
    plan = installment.plan
    case = session.get(Case, plan.case_id)
    intent = None
    if installment.status == "processing":
        intent = _existing(gateway, case.reference, installment.idempotency_key)
    elif not _claim(session, installment):
        return  # another run took it
    if intent is None:
        intent = gateway.charge_off_session(
            amount_cents=installment.amount_cents,
            customer_id=plan.stripe_customer_id,
            payment_method_id=plan.stripe_payment_method_id,
            case_reference=case.reference,
            idempotency_key=installment.idempotency_key,
            metadata={
                "installment_id": str(installment.id),
                "plan_id": str(plan.id),
                "source": "autopay",
            },
        )
    if after_charge is not None:
        after_charge(intent)
    _record_outcome(session, installment, case, intent, today=today, zone=zone, run=run)
    session.commit()


def _record_outcome(
    session: Session,
    installment: Installment,
    case: Case,
    intent: PaymentIntentInfo,
    *,
    today: dt.date,
    zone: ZoneInfo,
    run: ChargeRun,
) -> None:
    installment.payment_intent_id = intent.id
    details = {
        "case_id": case.id,
        "payment_intent": intent.id,
        "attempt": installment.attempts,
        "amount_cents": installment.amount_cents,
    }
    if intent.succeeded:
        apply_succeeded_intent(session, intent, intent.created.astimezone(zone).date())
        mark_paid(session, installment, actor=AUTOPAY)
        audit.record(session, AUTOPAY, "installment", installment.id, "installment.paid", **details)
        run.charged.append(installment.id)
    elif intent.needs_authentication:
        installment.status = "failed"
        installment.last_error = "authentication_required"
        installment.next_attempt_on = None  # only the debtor, on-session, can complete it
        audit.record(
            session, AUTOPAY, "installment", installment.id, "installment.needs_auth", **details
        )
        enqueue(session, "agency.autopay:email_authentication", installment.id, queue="mail")
        run.needs_authentication.append(installment.id)
    elif intent.status in ("processing", "requires_capture"):
        run.pending.append(installment.id)  # stays `processing`: the next run reconciles it
    else:
        installment.status = "failed"
        installment.last_error = (intent.last_error_code or intent.status)[:80]
        installment.next_attempt_on = today + dt.timedelta(days=RETRY_AFTER_DAYS)
        audit.record(
            session,
            AUTOPAY,
            "installment",
            installment.id,
            "installment.failed",
            code=installment.last_error,
            retry_on=installment.next_attempt_on.isoformat(),
            **details,
        )
        run.failed.append(installment.id)


def settle_authenticated(
    session: Session, installment: Installment, intent: PaymentIntentInfo, *, zone: ZoneInfo
) -> bool:
    """The debtor confirmed a PaymentIntent on-session: post it and mark the installment paid."""
    if not intent.succeeded or intent.id != installment.payment_intent_id:
        return False
    apply_succeeded_intent(session, intent, intent.created.astimezone(zone).date())
    if installment.status != "paid":
        mark_paid(session, installment, actor=AUTOPAY)
    return True


def charge_due(
    session: Session,
    gateway: PaymentGateway,
    *,
    today: dt.date,
    zone: ZoneInfo,
    after_charge=None,
) -> ChargeRun:
    """Charge every autopay installment due on `today`, then break plans 10 days past due.

    Commits after each installment (and before each Stripe call): it is its own unit of work,
    so an interruption loses at most one answer, which the next run reconciles."""
    run = ChargeRun(today)
    for installment_id in due_installments(session, today):
        try:
            charge_installment(
                session,
                gateway,
                installment_id,
                today=today,
                zone=zone,
                run=run,
                after_charge=after_charge,
            )
        except GatewayError as exc:
            session.rollback()
            log.warning(
                "installment %s: Stripe failed (%s); next run reconciles", installment_id, exc
            )
            run.pending.append(installment_id)
    for plan in overdue_plans(session, today):
        break_plan(
            session,
            plan,
            actor=AUTOPAY,
            reason=f"an installment is {BREAK_AFTER_DAYS} days past due",
        )
        run.broken.append(plan.id)
    session.commit()
    log.info("plans charge-due %s: %s", today, run.as_json())
    return run
