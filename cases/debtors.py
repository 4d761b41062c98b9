"""Debtors, the people or businesses who owe, and the ways to reach them."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cases.model import Base, Timestamped

DEBTOR_KINDS = ("consumer", "commercial")
PHONE_TYPES = ("mobile", "home", "work", "unknown")
SITUATIONS = ("unknown", "hardship", "juggling", "avoiding")


class Debtor(Timestamped, Base):
    __tablename__ = "debtors"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12), default="consumer")
    first_name: Mapped[str] = mapped_column(sa.String(100), default="")
    last_name: Mapped[str] = mapped_column(sa.String(100), default="")
    company_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # Normalised name + postal code: how the same debtor is recognised across referrals.
    match_key: Mapped[str] = mapped_column(sa.String(300), index=True)
    language: Mapped[str] = mapped_column(sa.String(5), default="en")
    situation: Mapped[str] = mapped_column(sa.String(12), default="unknown")
    # Times the debtor said are inconvenient: [{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}]
    inconvenient_times: Mapped[list[dict]] = mapped_column(default=list)
    cease_requested_at: Mapped[dt.datetime | None]
    attorney_name: Mapped[str | None] = mapped_column(sa.String(200))
    attorney_phone: Mapped[str | None] = mapped_column(sa.String(20))
    attorney_email: Mapped[str | None] = mapped_column(sa.String(254))
    attorney_since: Mapped[dt.datetime | None]

    addresses: Mapped[list[Address]] = relationship(
        back_populates="debtor", order_by="Address.id", cascade="all, delete-orphan"
    )
    phones: Mapped[list[Phone]] = relationship(
        back_populates="debtor", order_by="Phone.id", cascade="all, delete-orphan"
    )
    emails: Mapped[list[Email]] = relationship(
        back_populates="debtor", order_by="Email.id", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("kind IN ('consumer', 'commercial')", name="kind"),)

    @property
    def display_name(self) -> str:
        if self.kind == "commercial":
            return self.company_name
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def primary_address(self) -> Address | None:
        return self.addresses[0] if self.addresses else None


class Address(Base):
    __tablename__ = "debtor_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    line1: Mapped[str] = mapped_column(sa.String(200), default="")
    line2: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    state: Mapped[str] = mapped_column(sa.String(2))
    postal_code: Mapped[str] = mapped_column(sa.String(10))

    debtor: Mapped[Debtor] = relationship(back_populates="addresses")


class Phone(Base):
    __tablename__ = "debtor_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    type: Mapped[str] = mapped_column(sa.String(10), default="unknown")
    text_consent: Mapped[bool] = mapped_column(default=False)
    calls_opted_out_at: Mapped[dt.datetime | None]
    texts_opted_out_at: Mapped[dt.datetime | None]

    debtor: Mapped[Debtor] = relationship(back_populates="phones")


class Email(Base):
    __tablename__ = "debtor_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(sa.ForeignKey("debtors.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(254))
    consent: Mapped[bool] = mapped_column(default=True)
    opted_out_at: Mapped[dt.datetime | None]

    debtor: Mapped[Debtor] = relationship(back_populates="emails")


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def match_key(kind: str, name: str, postal_code: str) -> str:
    """The key under which the same debtor referred twice is found (name + 5-digit ZIP)."""
    return f"{kind}|{fold(name)}|{postal_code.strip()[:5]}"
