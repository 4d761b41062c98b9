"""Settlement offers: an amount less than the balance that, once paid, settles the case."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cases.model import Base, Timestamped

OFFER_STATUSES = ("proposed", "approved", "accepted", "paid", "expired", "withdrawn")


class SettlementOffer(Timestamped, Base):
    __tablename__ = "settlement_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    balance_cents: Mapped[int] = mapped_column(sa.BigInteger)  # the balance it was offered on
    expires_on: Mapped[dt.date]
    max_installments: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(10), default="proposed")
    proposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None]
    accepted_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)
