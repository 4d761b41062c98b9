"""Payment plans, their installments, and promises to pay."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cases import audit
from cases.model import Base, Timestamped

FREQUENCIES = ("weekly", "biweekly", "monthly")
PLAN_STATUSES = ("active", "completed", "broken", "cancelled")
INSTALLMENT_STATUSES = ("scheduled", "processing", "paid", "failed", "missed")
MIN_INSTALLMENT_CENTS = 2500


class PaymentPlan(Timestamped, Base):
    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    offer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("settlement_offers.id"))
    total_cents: Mapped[int] = mapped_column(sa.BigInteger)
    down_payment_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    frequency: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10), default="active")
    autopay: Mapped[bool] = mapped_column(default=False)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_payment_method_id: Mapped[str | None] = mapped_column(sa.String(64))
    consent_text: Mapped[str | None] = mapped_column(sa.Text)
    consented_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    installments: Mapped[list[Installment]] = relationship(
        back_populates="plan", order_by="Installment.seq", cascade="all, delete-orphan"
    )


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

    plan: Mapped[PaymentPlan] = relationship(back_populates="installments")

    __table_args__ = (sa.UniqueConstraint("plan_id", "seq"),)


class PromiseToPay(Timestamped, Base):
    __tablename__ = "promises_to_pay"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    due_on: Mapped[dt.date] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(10), default="open")  # open, kept, broken
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


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
    if not case.is_open or case.status == "disputed":
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
