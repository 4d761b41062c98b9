"""Fee schedules: the agency's contingency fee, by the account's age at referral."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, joinedload, mapped_column, relationship

from cases import audit
from cases.clients import Client
from cases.model import Base, Timestamped, utcnow

DEFAULT_TIERS = "90=2500,181=3300,366=4000"


class FeeSchedule(Timestamped, Base):
    """A client's fee schedule from `effective_from` on; a newer one replaces it for new
    postings only (each ledger entry stores the rate it was charged at)."""

    __tablename__ = "fee_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    effective_from: Mapped[dt.datetime] = mapped_column(default=utcnow)
    legal_bps: Mapped[int | None]

    tiers: Mapped[list[FeeTier]] = relationship(
        back_populates="schedule", order_by="FeeTier.min_days", cascade="all, delete-orphan"
    )

    def rate_for(self, days_past_due: int, in_legal: bool = False) -> int:
        if in_legal and self.legal_bps is not None:
            return self.legal_bps
        rate = self.tiers[0].bps
        for tier in self.tiers:
            if days_past_due >= tier.min_days:
                rate = tier.bps
        return rate

    def describe(self) -> str:
        return ",".join(f"{t.min_days}={t.bps}" for t in self.tiers)


class FeeTier(Base):
    __tablename__ = "fee_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(sa.ForeignKey("fee_schedules.id"), index=True)
    min_days: Mapped[int]  # days past due at referral, inclusive
    bps: Mapped[int]

    schedule: Mapped[FeeSchedule] = relationship(back_populates="tiers")

    __table_args__ = (sa.UniqueConstraint("schedule_id", "min_days"),)


class FeeScheduleError(ValueError):
    """A fee schedule was refused; the message says why."""


def parse_tiers(text: str) -> list[tuple[int, int]]:
    """'90=2500,181=3300' -> [(90, 2500), (181, 3300)], checked and sorted."""
    tiers: list[tuple[int, int]] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        days, sep, bps = part.partition("=")
        if not sep or not days.isdigit() or not bps.isdigit():
            raise FeeScheduleError(
                f"fee tier {part!r} must look like DAYS=BASIS_POINTS, e.g. 90=2500"
            )
        tiers.append((int(days), int(bps)))
    return checked_tiers(tiers)


def checked_tiers(tiers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The tiers sorted, or FeeScheduleError saying what is wrong with them."""
    if not tiers:
        raise FeeScheduleError("at least one fee tier is needed")
    tiers = sorted(tiers)
    if len({d for d, _ in tiers}) != len(tiers):
        raise FeeScheduleError("two fee tiers start at the same age")
    for days, bps in tiers:
        if not isinstance(days, int) or not isinstance(bps, int) or days < 0 or bps < 0:
            raise FeeScheduleError("fee tiers are whole days and basis points, never negative")
        if bps > 10000:
            raise FeeScheduleError("a fee rate cannot exceed 100% (10000 basis points)")
    return tiers


def set_schedule(
    session: Session,
    client: Client,
    tiers: list[tuple[int, int]],
    *,
    actor: audit.Actor,
    legal_bps: int | None = None,
) -> FeeSchedule:
    """Put a new fee schedule in force for payments posted from now on; history keeps the
    rates it was posted at. The same tiers and legal rate as the schedule in force change
    nothing (no new version)."""
    tiers = checked_tiers(tiers)
    if legal_bps is not None and not 0 <= legal_bps <= 10000:
        raise FeeScheduleError("the legal fee rate must be between 0 and 10000 basis points")
    current = current_schedule(session, client.id)
    if current is not None and current.describe() == ",".join(f"{d}={b}" for d, b in tiers):
        if current.legal_bps == legal_bps:
            return current
    schedule = FeeSchedule(
        client_id=client.id,
        legal_bps=legal_bps,
        tiers=[FeeTier(min_days=d, bps=b) for d, b in tiers],
    )
    session.add(schedule)
    session.flush()
    audit.record(
        session,
        actor,
        "client",
        client.id,
        "fee_schedule.set",
        tiers=schedule.describe(),
        legal_bps=legal_bps,
    )
    return schedule


def current_schedule(session: Session, client_id: int) -> FeeSchedule | None:
    """The client's schedule in force, with its tiers: one query."""
    return session.scalar(
        sa.select(FeeSchedule)
        .where(FeeSchedule.client_id == client_id)
        .order_by(FeeSchedule.effective_from.desc(), FeeSchedule.id.desc())
        .limit(1)
        .options(joinedload(FeeSchedule.tiers))
    )


def rate_in_force(client_id, days_past_due, in_legal) -> sa.ColumnElement[int]:
    """SQL for `current_schedule(...).rate_for(days_past_due, in_legal)`, 0 without a
    schedule: the same rule, read in the same statement as what a posting decides on. Each
    argument is a value or a SQL expression (a bind parameter of a statement built once)."""
    schedule_id = (
        sa.select(FeeSchedule.id)
        .where(FeeSchedule.client_id == client_id)
        .order_by(FeeSchedule.effective_from.desc(), FeeSchedule.id.desc())
        .limit(1)
        # Its own fee_schedules even inside `legal` below (correlated only to a case's columns).
        .correlate_except(FeeSchedule)
        .scalar_subquery()
    )

    def tier(*where, order) -> sa.ScalarSelect:
        query = sa.select(FeeTier.bps).where(FeeTier.schedule_id == schedule_id, *where)
        return query.order_by(order).limit(1).scalar_subquery()

    legal = sa.select(FeeSchedule.legal_bps).where(FeeSchedule.id == schedule_id)
    if isinstance(in_legal, bool):
        in_legal = sa.literal(in_legal)
    return sa.func.coalesce(
        sa.case((in_legal, legal.scalar_subquery())),  # NULL when not in legal or none set
        tier(FeeTier.min_days <= days_past_due, order=FeeTier.min_days.desc()),
        tier(order=FeeTier.min_days),  # younger than every tier: the first tier's rate
        0,
    )


def fee_cents(amount_cents: int, bps: int) -> int:
    """The fee on one payment, rounded half-up to the cent (negative amounts mirror it)."""
    sign = -1 if amount_cents < 0 else 1
    return sign * ((abs(amount_cents) * bps + 5000) // 10000)
