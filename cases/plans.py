"""Payment plans, their installments, and promises to pay."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
