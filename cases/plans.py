"""Payment plans, their installments, and promises to pay.

A plan is `active` (in force and charged), `paused` from the day a dispute holds its case until
the debtor confirms the dates the end of the hold moved it to, then `active` again; it ends
`completed`, `broken` (an installment 10 days late), `cancelled` (the case paid, settled or
closed) or `lapsed` (its moved dates not confirmed in time: not broken, nothing was missed).
A hold never breaks a plan: a paused plan is not charged, reminded or broken."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cases import audit, chase
from cases.case import ON_END, Case, change_status
from cases.ledger import LedgerEntry, amount_text, balance_cents, cents_sum
from cases.model import Base, Timestamped, utcnow
from cases.offers import SettlementOffer, accepted_offer, paid_toward

FREQUENCIES = ("weekly", "biweekly", "monthly")
PLAN_STATUSES = ("active", "paused", "completed", "broken", "cancelled", "lapsed")
# A plan in force: the case is on it (`paused` during a dispute hold and until the debtor
# confirms the dates the hold's end moved it to).
IN_FORCE = ("active", "paused")
INSTALLMENT_STATUSES = ("scheduled", "processing", "paid", "failed", "missed")
MIN_INSTALLMENT_CENTS = 2500
FIRST_DATE_WITHIN_DAYS = 30
RETRY_AFTER_DAYS = 3
BREAK_AFTER_DAYS = 10
# When a dispute hold ends, the debtor has this many days to confirm a plan's moved dates.
RECONFIRM_DAYS = 10
LAPSE_REASON = "not re-confirmed after the dispute hold"
# Installments per month of plan length, per frequency (52 weeks, 26 fortnights a year).
PER_YEAR = {"weekly": 52, "biweekly": 26, "monthly": 12}
FREQUENCY_LABELS = {"weekly": "weekly", "biweekly": "every two weeks", "monthly": "monthly"}


class PaymentPlan(Timestamped, Base):
    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Their values before a change are loaded if need be (active_history): cases.chase reads
    # them to keep the case's `chase_from` (the case a plan or promise leaves, a status left).
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True, active_history=True)
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("settlement_offers.id"))
    total_cents: Mapped[int] = mapped_column(sa.BigInteger)
    down_payment_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    frequency: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10), default="active", active_history=True)
    autopay: Mapped[bool] = mapped_column(default=False)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_payment_method_id: Mapped[str | None] = mapped_column(sa.String(64))
    consent_text: Mapped[str | None] = mapped_column(sa.Text)
    consented_at: Mapped[dt.datetime | None]
    # Set while a paused plan waits for the debtor to confirm the dates the end of a dispute
    # hold moved it to: the last day they can. NULL otherwise (active, or paused by a hold).
    reconfirm_by: Mapped[dt.date | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    installments: Mapped[list[Installment]] = relationship(
        back_populates="plan", order_by="Installment.seq", cascade="all, delete-orphan"
    )

    @property
    def on_hold(self) -> bool:
        """Paused while a dispute holds the case."""
        return self.status == "paused" and self.reconfirm_by is None

    @property
    def awaiting_confirmation(self) -> bool:
        """Paused until the debtor confirms the dates the end of the hold moved it to."""
        return self.status == "paused" and self.reconfirm_by is not None


class Installment(Base):
    __tablename__ = "installments"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("payment_plans.id"), index=True)
    seq: Mapped[int]
    due_on: Mapped[dt.date] = mapped_column(index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(10), default="scheduled")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_on: Mapped[dt.date | None]
    paid_at: Mapped[dt.datetime | None]

    # The attempt in flight or last made: its PaymentIntent (for the debtor to authenticate
    # on-session), and why it did not go through.
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(80))
    last_error: Mapped[str | None] = mapped_column(sa.String(80))

    plan: Mapped[PaymentPlan] = relationship(back_populates="installments")

    @property
    def idempotency_key(self) -> str:
        """The key of the current attempt, recorded before Stripe is called."""
        return f"installment-{self.id}-attempt-{self.attempts}"

    @property
    def needs_authentication(self) -> bool:
        return self.status == "failed" and self.last_error == "authentication_required"

    __table_args__ = (sa.UniqueConstraint("plan_id", "seq"),)


class PromiseToPay(Timestamped, Base):
    __tablename__ = "promises_to_pay"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cases.id"),
        index=True,
        active_history=True,  # as PaymentPlan's
    )
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    due_on: Mapped[dt.date] = mapped_column(index=True)
    # open, kept, broken
    status: Mapped[str] = mapped_column(sa.String(10), default="open", active_history=True)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


# The case's `chase_from` (the queue's promises to chase) follows every flush of these.
chase.watch(PromiseToPay, PaymentPlan)


class PromiseError(ValueError):
    """A promise to pay was refused; the message says why."""


def record_promise(
    session: Session,
    case,
    *,
    amount_cents: int,
    due_on: dt.date,
    today: dt.date,
    actor: audit.Actor,
) -> PromiseToPay:
    if amount_cents <= 0:
        raise PromiseError("a promise needs a positive amount")
    if due_on < today:
        raise PromiseError("a promise cannot be due in the past")
    if due_on > today + dt.timedelta(days=90):
        raise PromiseError("a promise more than 90 days out is a payment plan, not a promise")
    if not case.takes_offers:
        raise PromiseError(f"a {case.status} case takes no promise")
    promise = PromiseToPay(
        case_id=case.id, amount_cents=amount_cents, due_on=due_on, recorded_by_id=actor.user_id
    )
    session.add(promise)
    session.flush()
    audit.record(
        session,
        actor,
        "promise",
        promise.id,
        "promise.recorded",
        case_id=case.id,
        amount_cents=amount_cents,
        due_on=due_on.isoformat(),
    )
    return promise


# --- payment plans ------------------------------------------------------------------------


class PlanError(ValueError):
    """A payment plan was refused; the message says why."""


@dataclass(frozen=True)
class ScheduledPayment:
    seq: int
    due_on: dt.date
    amount_cents: int


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or that month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(first_on: dt.date, frequency: str, periods: int) -> dt.date:
    if frequency == "monthly":
        return add_months(first_on, periods)
    return first_on + dt.timedelta(weeks=periods * (1 if frequency == "weekly" else 2))


def max_installments(frequency: str, max_plan_months: int) -> int:
    """How many installments of this frequency fit in the client's longest plan."""
    if frequency not in PER_YEAR:
        raise PlanError(f"frequency must be one of: {', '.join(FREQUENCIES)}")
    return max(1, max_plan_months * PER_YEAR[frequency] // 12)


def build_schedule(
    *,
    total_cents: int,
    frequency: str,
    count: int,
    first_on: dt.date,
    today: dt.date,
    max_plan_months: int,
    down_payment_cents: int = 0,
) -> list[ScheduledPayment]:
    """The installments of a plan: an optional down payment on the first date, then `count`
    equal installments (the last takes the rounding) adding up to the total exactly."""
    if frequency not in FREQUENCIES:
        raise PlanError(f"frequency must be one of: {', '.join(FREQUENCIES)}")
    if total_cents <= 0:
        raise PlanError("there is nothing to pay on this case")
    if count < 1:
        raise PlanError("a plan needs at least one installment")
    limit = max_installments(frequency, max_plan_months)
    if count > limit:
        raise PlanError(
            f"at most {limit} {FREQUENCY_LABELS[frequency]} installments fit in this client's "
            f"{max_plan_months}-month limit"
        )
    if first_on < today:
        raise PlanError("the first payment cannot be in the past")
    if first_on > today + dt.timedelta(days=FIRST_DATE_WITHIN_DAYS):
        raise PlanError(f"the first payment must be within {FIRST_DATE_WITHIN_DAYS} days")
    if down_payment_cents < 0:
        raise PlanError("the down payment cannot be negative")
    if 0 < down_payment_cents < MIN_INSTALLMENT_CENTS:
        raise PlanError(f"a down payment must be at least ${amount_text(MIN_INSTALLMENT_CENTS)}")
    if down_payment_cents >= total_cents:
        raise PlanError("the down payment must be less than the amount of the plan")
    rest = total_cents - down_payment_cents
    each = rest // count
    if each < MIN_INSTALLMENT_CENTS:
        raise PlanError(
            f"installments must be at least ${amount_text(MIN_INSTALLMENT_CENTS)}: "
            f"{count} installments of ${amount_text(rest)} are too small; choose fewer"
        )
    schedule = []
    if down_payment_cents:
        schedule.append(ScheduledPayment(1, first_on, down_payment_cents))
    offset = 1 if down_payment_cents else 0
    for n in range(count):
        amount = each if n < count - 1 else rest - each * (count - 1)
        schedule.append(
            ScheduledPayment(len(schedule) + 1, due_date(first_on, frequency, n + offset), amount)
        )
    assert sum(p.amount_cents for p in schedule) == total_cents
    return schedule


def active_plan(session: Session, case_id: int) -> PaymentPlan | None:
    """The plan in force on the case: `active`, or `paused` by a dispute hold (only an
    `active` one is charged, reminded or broken)."""
    return session.scalar(
        sa.select(PaymentPlan)
        .where(PaymentPlan.case_id == case_id, PaymentPlan.status.in_(IN_FORCE))
        .order_by(PaymentPlan.id.desc())
    )


def has_plan_in_force(case_id) -> sa.ColumnElement[bool]:
    """SQL for "the case has a plan in force" (`active_plan` would find one)."""
    return sa.exists().where(PaymentPlan.case_id == case_id, PaymentPlan.status.in_(IN_FORCE))


def plan_total(session: Session, case: Case) -> tuple[int, SettlementOffer | None]:
    """What a plan on this case pays: what is left of an accepted settlement (its amount less
    what was paid toward it), or the balance."""
    offer = accepted_offer(session, case.id)
    if offer is not None:
        return offer.amount_cents - paid_toward(session, offer), offer
    return balance_cents(session, case.id), None


def plan_schedule(
    session: Session,
    case: Case,
    *,
    frequency: str,
    count: int,
    first_on: dt.date,
    today: dt.date,
    down_payment_cents: int = 0,
) -> tuple[list[ScheduledPayment], int, SettlementOffer | None]:
    """The schedule a plan with these terms would have, checked as `create_plan` checks it,
    without writing anything (the portal shows it for the debtor to confirm). Returns the
    schedule, the plan's total and the accepted settlement it pays, if any."""
    if not case.takes_plan:
        raise PlanError(f"a {case.status} case cannot take a payment plan")
    if active_plan(session, case.id) is not None:
        raise PlanError("this case already has a payment plan in force")
    total, offer = plan_total(session, case)
    if offer is not None and count + (1 if down_payment_cents else 0) > offer.max_installments:
        raise PlanError(
            f"the accepted settlement allows at most {offer.max_installments} payment(s)"
        )
    schedule = build_schedule(
        total_cents=total,
        frequency=frequency,
        count=count,
        first_on=first_on,
        today=today,
        max_plan_months=case.client.max_plan_months,
        down_payment_cents=down_payment_cents,
    )
    if offer is not None and schedule[-1].due_on > offer.expires_on:
        # Payments after the offer's date do not count toward it (SPEC §7): all must be in time.
        raise PlanError(
            f"the accepted settlement must be paid by {offer.expires_on.isoformat()}; "
            f"this schedule's last payment would be on {schedule[-1].due_on.isoformat()}"
        )
    return schedule, total, offer


def create_plan(
    session: Session,
    case: Case,
    *,
    frequency: str,
    count: int,
    first_on: dt.date,
    today: dt.date,
    actor: audit.Actor,
    down_payment_cents: int = 0,
    autopay: bool = False,
) -> PaymentPlan:
    """Put a plan in force on an active case: its schedule, and the case moves to `plan`."""
    schedule, total, offer = plan_schedule(
        session,
        case,
        frequency=frequency,
        count=count,
        first_on=first_on,
        today=today,
        down_payment_cents=down_payment_cents,
    )
    plan = PaymentPlan(
        case_id=case.id,
        offer_id=offer.id if offer else None,
        total_cents=total,
        down_payment_cents=down_payment_cents,
        frequency=frequency,
        status="active",
        autopay=autopay,
        created_by_id=actor.user_id,
        installments=[
            Installment(seq=p.seq, due_on=p.due_on, amount_cents=p.amount_cents, status="scheduled")
            for p in schedule
        ],
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.created",
        case_id=case.id,
        total_cents=total,
        down_payment_cents=down_payment_cents,
        frequency=frequency,
        installments=len(schedule),
        first_on=first_on.isoformat(),
        autopay=autopay,
    )
    change_status(session, case, "plan", actor=actor, reason=f"payment plan {plan.id} set up")
    return plan


def record_consent(
    session: Session,
    plan: PaymentPlan,
    *,
    text: str,
    actor: audit.Actor,
    at: dt.datetime | None = None,
) -> None:
    """Keep the exact wording the debtor agreed to, and when."""
    if not text.strip():
        raise PlanError("consent needs the wording agreed to")
    plan.consent_text = text
    plan.consented_at = at or utcnow()
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.consented",
        case_id=plan.case_id,
        consented_at=plan.consented_at.isoformat(),
        text=text,
    )


def save_card(
    session: Session,
    plan: PaymentPlan,
    *,
    customer_id: str,
    payment_method_id: str,
    actor: audit.Actor,
) -> None:
    """The card autopay charges from now on (saved by the debtor through a SetupIntent)."""
    if plan.status != "active":
        raise PlanError("only a plan in force takes a card")
    plan.autopay = True
    plan.stripe_customer_id = customer_id
    plan.stripe_payment_method_id = payment_method_id
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.card_saved",
        case_id=plan.case_id,
        payment_method=payment_method_id,
    )


def mark_paid(session: Session, installment: Installment, *, actor: audit.Actor) -> None:
    """An installment paid; the last one completes the plan."""
    installment.status = "paid"
    installment.paid_at = utcnow()
    installment.last_error = None
    installment.next_attempt_on = None
    plan = installment.plan
    # "cancelled" too: the last installment's payment ends the case first (cancel_plan_of_ended_case)
    if plan.status in (*IN_FORCE, "cancelled") and all(
        i.status == "paid" for i in plan.installments
    ):
        plan.status = "completed"
        audit.record(
            session, actor, "payment_plan", plan.id, "plan.completed", case_id=plan.case_id
        )


# --- what the ledger says was paid ------------------------------------------------------------
# Money counts toward a plan however it arrives (the portal, a check at the money desk, the
# API, a client's direct payment, autopay): payments net of reversals posted since the plan
# began, applied to its installments in due-date order. Counting money received, not the
# balance, keeps a settlement plan (less than the balance) right. payments.posting calls
# settle_installments for every payment and reversal; the early-out run calls it too.

MONEY_KINDS = ("payment", "direct_payment", "reversal")
# The audit action of an installment this rule marked paid (only those go back on a reversal).
COVERED = "installment.covered"


def received_toward(session: Session, plan: PaymentPlan) -> int:
    """Cents received on the plan's case since the plan began, net of reversals."""
    return -session.scalar(
        sa.select(cents_sum(LedgerEntry.amount_cents)).where(
            LedgerEntry.case_id == plan.case_id,
            LedgerEntry.kind.in_(MONEY_KINDS),
            LedgerEntry.created_at >= plan.created_at,
        )
    )


def _covered_by_ledger(session: Session, installment: Installment) -> bool:
    """Whether the installment was last marked paid by the money received (not by autopay)."""
    last = session.scalar(
        sa.select(audit.AuditEvent.action)
        .where(
            audit.AuditEvent.entity_type == "installment",
            audit.AuditEvent.entity_id == str(installment.id),
        )
        .order_by(audit.AuditEvent.id.desc())
        .limit(1)
    )
    return last == COVERED


def settle_installments(
    session: Session, plan: PaymentPlan, *, actor: audit.Actor
) -> list[Installment]:
    """Mark paid, in due-date order, the installments the money received since the plan began
    covers in full (the last completes the plan); one this rule marked paid that the money no
    longer covers (a bounced check, a refund) is unpaid again. One autopay is charging
    (`processing`) is autopay's to settle, but counts in the order. Returns those changed."""
    session.flush()
    return _settle(session, plan, received_toward(session, plan), actor=actor)


def settle_plans(session: Session, plans: list[PaymentPlan], *, actor: audit.Actor) -> None:
    """`settle_installments` for several plans (of different cases), what each received read
    in one statement for all."""
    if not plans:
        return
    session.flush()
    money = sa.and_(
        LedgerEntry.case_id == PaymentPlan.case_id,
        LedgerEntry.kind.in_(MONEY_KINDS),
        LedgerEntry.created_at >= PaymentPlan.created_at,
    )
    received = dict(
        session.execute(
            sa.select(PaymentPlan.id, cents_sum(LedgerEntry.amount_cents))
            .select_from(PaymentPlan)
            .outerjoin(LedgerEntry, money)
            .where(PaymentPlan.id.in_([plan.id for plan in plans]))
            .group_by(PaymentPlan.id)
        ).all()
    )
    for plan in plans:
        _settle(session, plan, -received[plan.id], actor=actor)


def _settle(
    session: Session, plan: PaymentPlan, received: int, *, actor: audit.Actor
) -> list[Installment]:
    changed = []
    due = 0
    for installment in sorted(plan.installments, key=lambda i: (i.due_on, i.seq)):
        due += installment.amount_cents
        details = {
            "case_id": plan.case_id,
            "seq": installment.seq,
            "amount_cents": installment.amount_cents,
            "received_cents": received,
        }
        if installment.status in UNPAID and due <= received:
            mark_paid(session, installment, actor=actor)
            audit.record(session, actor, "installment", installment.id, COVERED, **details)
            changed.append(installment)
        elif (
            installment.status == "paid"
            and due > received
            and plan.status in IN_FORCE
            and _covered_by_ledger(session, installment)
        ):
            installment.status = "scheduled"
            installment.paid_at = None
            audit.record(
                session, actor, "installment", installment.id, "installment.uncovered", **details
            )
            changed.append(installment)
    return changed


def settle_plan_of_case(session: Session, case: Case, *, actor: audit.Actor) -> None:
    """Money moved on the case: its plan in force counts it (settle_installments)."""
    plan = active_plan(session, case.id)
    if plan is not None:
        settle_installments(session, plan, actor=actor)


def cancel_plan_of_ended_case(session: Session, case: Case, actor: audit.Actor) -> None:
    """A case paid, settled or closed: its plan in force is cancelled and no installment is
    charged again. One mid-attempt stays `processing`, for `plans charge-due` to reconcile."""
    plan = active_plan(session, case.id)
    if plan is None:
        return
    plan.status = "cancelled"
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.cancelled",
        case_id=case.id,
        reason=f"the case is {case.status}",
    )


ON_END.append(cancel_plan_of_ended_case)


def _locked(session: Session, plan: PaymentPlan) -> PaymentPlan:
    """The plan as it stands now, its row locked until the unit of work ends: a debtor
    confirming in two tabs, or confirming while the daily run lapses or breaks the plan, take
    turns, and the second sees what the first did. (SQLite runs one writer at a time anyway.)"""
    session.flush()  # what this unit of work already changed stands (refresh would drop it)
    session.refresh(plan, with_for_update=True)
    return plan


def break_plan(session: Session, plan: PaymentPlan, *, actor: audit.Actor, reason: str) -> bool:
    """A broken plan: its unpaid installments are missed and the case goes back to `active`.
    One mid-attempt (`processing`) stays so: Stripe may have charged it, and `plans charge-due`
    reconciles it whatever the plan's status. False, and nothing done, if the plan is no longer
    active when its lock is taken."""
    if _locked(session, plan).status != "active":
        return False
    plan.status = "broken"
    for installment in plan.installments:
        if installment.status not in ("paid", "processing"):
            installment.status = "missed"
            installment.next_attempt_on = None
    audit.record(
        session, actor, "payment_plan", plan.id, "plan.broken", case_id=plan.case_id, reason=reason
    )
    case = session.get(Case, plan.case_id)
    if case.status == "plan":
        change_status(session, case, "active", actor=actor, reason=f"payment plan broken: {reason}")
    return True


def overdue_plans(session: Session, today: dt.date) -> list[PaymentPlan]:
    """Plans in force with an installment unpaid 10 days past its due date. Never one of a
    case a dispute holds (its plan is paused: a hold never breaks a plan)."""
    cutoff = today - dt.timedelta(days=BREAK_AFTER_DAYS)
    return list(
        session.scalars(
            sa.select(PaymentPlan)
            .where(
                PaymentPlan.status == "active",
                # Not of a disputed case; and an early-out plan is the early-out run's to break
                # (cases.early_out_plans). Probed per plan found, not a list of such cases.
                ~sa.exists().where(
                    Case.id == PaymentPlan.case_id,
                    sa.or_(Case.status == "disputed", Case.program == "early_out"),
                ),
                PaymentPlan.id.in_(
                    sa.select(Installment.plan_id).where(
                        Installment.status.in_(("scheduled", "failed", "missed")),
                        Installment.due_on <= cutoff,
                    )
                ),
            )
            .order_by(PaymentPlan.id)
        )
    )


# --- a dispute hold pauses the plan -----------------------------------------------------------
# Called by cases.disputes when a hold starts and ends. While paused, a plan is not charged,
# reminded or broken, and nothing of it is missed; when the hold ends its unpaid installments
# move so that none is due in the past, and the debtor confirms the new dates (autopay charges
# only dates the debtor authorised). Not confirmed in time, the plan lapses: not broken.

UNPAID = ("scheduled", "failed", "missed")


def pause_for_hold(session: Session, case: Case, *, actor: audit.Actor) -> PaymentPlan | None:
    """A dispute holds the case: its plan in force is paused (also one still waiting for the
    debtor to confirm dates moved by an earlier hold: the new hold's end moves them again)."""
    plan = active_plan(session, case.id)
    if plan is None or plan.on_hold:
        return plan
    plan.status = "paused"
    plan.reconfirm_by = None
    for installment in plan.installments:
        if installment.status == "failed":
            installment.next_attempt_on = None  # no retry during the hold
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.paused",
        case_id=case.id,
        reason="dispute hold",
    )
    return plan


def periods_between(earlier: dt.date, later: dt.date, frequency: str) -> int:
    """How many of the plan's periods lie between two of its due dates."""
    if frequency == "monthly":
        return (later.year - earlier.year) * 12 + later.month - earlier.month
    return round((later - earlier).days / (7 if frequency == "weekly" else 14))


def moved_schedule(plan: PaymentPlan, *, today: dt.date) -> dict[int, dt.date]:
    """New dates for the unpaid installments of a plan whose hold ends today, by installment
    id: none when nothing is due in the past. Otherwise the first is due on the last day to
    confirm them (today + RECONFIRM_DAYS: nothing falls due before the debtor could agree to
    it) and the others keep their places in the plan's rhythm (same number of periods apart)."""
    unpaid = sorted(
        (i for i in plan.installments if i.status in UNPAID), key=lambda i: (i.due_on, i.seq)
    )
    if not unpaid or unpaid[0].due_on >= today:
        return {}
    first_on = today + dt.timedelta(days=RECONFIRM_DAYS)
    start = unpaid[0].due_on
    return {
        i.id: due_date(first_on, plan.frequency, periods_between(start, i.due_on, plan.frequency))
        for i in unpaid
    }


def resume_after_hold(
    session: Session, case: Case, *, today: dt.date, actor: audit.Actor
) -> PaymentPlan | None:
    """The hold on an `active` case ended: its paused plan takes the case back to `plan`. With
    nothing due in the past it is `active` again at once; otherwise its unpaid installments
    move (moved_schedule) and it stays paused until the debtor confirms the new dates, by
    `reconfirm_by`."""
    plan = active_plan(session, case.id)
    if plan is None or not plan.on_hold:
        return None
    moves = moved_schedule(plan, today=today)
    if case.status == "active":
        change_status(
            session,
            case,
            "plan",
            actor=actor,
            reason=f"payment plan {plan.id} resumes after the hold",
        )
    if not moves:
        plan.status = "active"
        audit.record(
            session, actor, "payment_plan", plan.id, "plan.resumed", case_id=case.id, moved=[]
        )
        return plan
    moved = []
    for installment in plan.installments:
        if installment.id in moves:
            moved.append(
                {
                    "seq": installment.seq,
                    "from": installment.due_on.isoformat(),
                    "to": moves[installment.id].isoformat(),
                }
            )
            installment.due_on = moves[installment.id]
            installment.status = "scheduled"  # a new date, not yet tried
            installment.next_attempt_on = None
            installment.last_error = None
    plan.reconfirm_by = today + dt.timedelta(days=RECONFIRM_DAYS)
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.rescheduled",
        case_id=case.id,
        reason="dispute hold ended",
        moved=moved,
        confirm_by=plan.reconfirm_by.isoformat(),
    )
    return plan


def confirm_new_dates(
    session: Session, plan: PaymentPlan, *, text: str, today: dt.date, actor: audit.Actor
) -> None:
    """The debtor agrees to the moved dates (`text`, the wording shown): the plan is `active`
    again, and autopay charges them."""
    if not _locked(session, plan).awaiting_confirmation:
        raise PlanError("this plan has no new dates to confirm")
    if today > plan.reconfirm_by:
        raise PlanError("the time to confirm the new dates has passed")
    if session.get(Case, plan.case_id).status != "plan":
        raise PlanError("this account is not on its payment plan")
    plan.status = "active"
    plan.reconfirm_by = None
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.confirmed",
        case_id=plan.case_id,
        dates=[
            {"seq": i.seq, "due_on": i.due_on.isoformat()}
            for i in plan.installments
            if i.status in UNPAID
        ],
    )
    record_consent(session, plan, text=text, actor=actor)


def unconfirmed_plans(session: Session, today: dt.date) -> list[PaymentPlan]:
    """Paused plans whose moved dates the debtor did not confirm by their last day."""
    return list(
        session.scalars(
            sa.select(PaymentPlan)
            .where(PaymentPlan.status == "paused", PaymentPlan.reconfirm_by < today)
            .order_by(PaymentPlan.id)
        )
    )


def lapse_plan(session: Session, plan: PaymentPlan, *, actor: audit.Actor) -> bool:
    """Moved dates not confirmed in time: the plan `lapsed` (not broken: no installment is
    missed) and the case goes back to `active`, onto the collector's queue. False, and nothing
    done, if the dates were confirmed meanwhile."""
    if not _locked(session, plan).awaiting_confirmation:
        return False
    plan.status = "lapsed"
    audit.record(
        session,
        actor,
        "payment_plan",
        plan.id,
        "plan.lapsed",
        case_id=plan.case_id,
        reason=LAPSE_REASON,
        confirm_by=plan.reconfirm_by.isoformat() if plan.reconfirm_by else None,
    )
    case = session.get(Case, plan.case_id)
    if case.status == "plan":
        change_status(
            session, case, "active", actor=actor, reason=f"payment plan {plan.id} {LAPSE_REASON}"
        )
    return True
