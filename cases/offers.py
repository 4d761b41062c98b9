"""Settlement offers: an amount less than the balance that, once paid, settles the case.

Authority (SPEC §7): a collector may offer down to 85% of the balance alone, and the offer is
approved at once; between the client's floor and 85% it waits for a supervisor; under the
floor nothing can be offered. One live offer per case: a new one withdraws the one before.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import WORKED_STATUSES, Case
from cases.clients import Client
from cases.ledger import LedgerEntry, amount_text, balance_cents, cents_sum
from cases.model import Base, Timestamped, utcnow
from cases.validation import earliest_payment_deadline

OFFER_STATUSES = ("proposed", "approved", "accepted", "paid", "expired", "withdrawn")
# Offers still in play: waiting for a supervisor, for the debtor, or for the money.
LIVE = ("proposed", "approved", "accepted")
COLLECTOR_ALONE_BPS = 8500
MAX_EXPIRY_DAYS = 60
APPROVERS = ("admin", "supervisor")
STAFF = ("admin", "supervisor", "collector")
OFFERABLE_CASE_STATUSES = WORKED_STATUSES  # Case.takes_offers


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

    @property
    def saving_cents(self) -> int:
        return self.balance_cents - self.amount_cents

    @property
    def share_bps(self) -> int:
        """The offer as a share of the balance it was made on, rounded down."""
        return self.amount_cents * 10000 // self.balance_cents

    def shown_status(self, today: dt.date) -> str:
        """The status as it stands today: a live offer past its date is expired even before
        the expiry job has run."""
        if self.status in LIVE and self.expires_on < today:
            return "expired"
        return self.status


class OfferBand(Timestamped, Base):
    """A client's self-service discount: debtors whose balance is in [min, max) may settle
    for `pay_bps` of it in the portal, without a collector (never under the client's floor)."""

    __tablename__ = "offer_bands"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("clients.id"), index=True)
    min_balance_cents: Mapped[int] = mapped_column(sa.BigInteger)
    max_balance_cents: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: no upper end
    pay_bps: Mapped[int]
    valid_days: Mapped[int] = mapped_column(default=30)

    def covers(self, balance: int) -> bool:
        return self.min_balance_cents <= balance and (
            self.max_balance_cents is None or balance < self.max_balance_cents
        )


class OfferError(ValueError):
    """An offer, or a decision about one, was refused; the message says why."""


def _cents(amount: int) -> str:
    return f"${amount_text(amount)}"


def amount_for(
    balance: int, *, amount_cents: int | None = None, percent_bps: int | None = None
) -> int:
    """The offer amount, given in cents or as a share of the balance (basis points, rounded
    half-up to the cent)."""
    if (amount_cents is None) == (percent_bps is None):
        raise OfferError("give either an amount or a percentage of the balance, not both")
    if percent_bps is not None:
        if not 1 <= percent_bps < 10000:
            raise OfferError("the percentage must be more than 0% and less than 100%")
        return (balance * percent_bps + 5000) // 10000
    return amount_cents


def check_deadline(case: Case, deadline: dt.date, today: dt.date) -> None:
    """Refuse a payment deadline that falls before the validation period ends (SPEC §6.7)."""
    earliest = earliest_payment_deadline(case, today)
    if earliest is not None and deadline < earliest:
        raise OfferError(
            f"the debtor's validation period runs until {earliest:%Y-%m-%d}: a payment "
            f"deadline of {deadline:%Y-%m-%d} would overshadow the right to dispute "
            f"(12 CFR 1006.38(b)); let the offer run until {earliest:%Y-%m-%d} or later"
        )


def propose_offer(
    session: Session,
    case: Case,
    *,
    expires_on: dt.date,
    today: dt.date,
    role: str,
    actor: audit.Actor,
    amount_cents: int | None = None,
    percent_bps: int | None = None,
    max_installments: int = 1,
) -> SettlementOffer:
    """Make an offer on the current balance. Inside a collector's authority it is approved
    at once (the portal shows it); under 85% it waits for a supervisor, unless a supervisor
    made it; under the client's floor it is refused."""
    if role not in STAFF:
        raise OfferError("only agency staff can propose a settlement")
    if case.status not in OFFERABLE_CASE_STATUSES:
        raise OfferError(f"a {case.status} case cannot be offered a settlement")
    balance = balance_cents(session, case.id)
    if balance <= 0:
        raise OfferError("there is no balance to settle")
    amount = amount_for(balance, amount_cents=amount_cents, percent_bps=percent_bps)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise OfferError("the offer amount must be more than $0.00")
    if amount >= balance:
        raise OfferError(
            f"an offer must be less than the balance ({_cents(balance)}); "
            "for the whole balance, take a payment"
        )
    if expires_on <= today:
        raise OfferError("the offer must expire after today")
    if expires_on > today + dt.timedelta(days=MAX_EXPIRY_DAYS):
        raise OfferError(f"an offer can be open for at most {MAX_EXPIRY_DAYS} days")
    check_deadline(case, expires_on, today)
    client = session.get(Client, case.client_id)
    if not isinstance(max_installments, int) or not 1 <= max_installments <= client.max_plan_months:
        raise OfferError(
            f"installments must be between 1 and {client.max_plan_months} (the client's limit)"
        )
    floor = (balance * client.min_settlement_bps + 9999) // 10000  # never under the floor
    if amount < floor:
        raise OfferError(
            f"{_cents(amount)} is under {client.name}'s floor of "
            f"{client.min_settlement_bps / 100:g}% ({_cents(floor)}): it cannot be offered"
        )
    if session.scalar(
        sa.select(SettlementOffer.id).where(
            SettlementOffer.case_id == case.id,
            SettlementOffer.status == "accepted",
            SettlementOffer.expires_on >= today,
        )
    ):
        raise OfferError("the debtor has accepted an offer on this case; it must run its course")
    for previous in session.scalars(
        sa.select(SettlementOffer).where(
            SettlementOffer.case_id == case.id, SettlementOffer.status.in_(LIVE)
        )
    ):
        _set_status(
            session,
            previous,
            "withdrawn" if previous.status != "accepted" else "expired",
            actor=actor,
            reason="replaced by a new offer",
        )
    collector_may = amount * 10000 >= balance * COLLECTOR_ALONE_BPS
    approved = collector_may or role in APPROVERS
    offer = SettlementOffer(
        case_id=case.id,
        amount_cents=amount,
        balance_cents=balance,
        expires_on=expires_on,
        max_installments=max_installments,
        status="approved" if approved else "proposed",
        proposed_by_id=actor.user_id,
        approved_by_id=actor.user_id if approved else None,
        approved_at=utcnow() if approved else None,
    )
    session.add(offer)
    session.flush()
    audit.record(
        session,
        actor,
        "settlement_offer",
        offer.id,
        "offer.proposed",
        case_id=case.id,
        amount_cents=amount,
        balance_cents=balance,
        expires_on=expires_on.isoformat(),
        max_installments=max_installments,
        status=offer.status,
    )
    return offer


def _locked(session: Session, offer: SettlementOffer) -> SettlementOffer:
    """The offer as it stands now, its row locked until the unit of work ends: two people
    acting on one offer at once (two accepts, an accept and a withdraw) take turns, and the
    second sees what the first did. (SQLite runs one writer at a time anyway.)"""
    session.flush()  # what this unit of work already changed stands (refresh would drop it)
    session.refresh(offer, with_for_update=True)
    return offer


def _set_status(
    session: Session, offer: SettlementOffer, status: str, *, actor: audit.Actor, reason: str
) -> None:
    old = offer.status
    offer.status = status
    audit.record(
        session,
        actor,
        "settlement_offer",
        offer.id,
        f"offer.{status}",
        case_id=offer.case_id,
        reason=reason,
        **{"from": old, "to": status},
    )


def approve_offer(
    session: Session, offer: SettlementOffer, *, role: str, actor: audit.Actor, today: dt.date
) -> SettlementOffer:
    """A supervisor's approval puts a proposed offer in front of the debtor."""
    if role not in APPROVERS:
        raise OfferError("only a supervisor or an admin can approve an offer")
    _locked(session, offer)
    if offer.status != "proposed":
        raise OfferError(f"this offer is {offer.status}, not waiting for approval")
    if offer.expires_on < today:
        raise OfferError("this offer has expired; propose a new one")
    check_deadline(session.get(Case, offer.case_id), offer.expires_on, today)
    offer.approved_by_id = actor.user_id
    offer.approved_at = utcnow()
    _set_status(session, offer, "approved", actor=actor, reason="approved by a supervisor")
    return offer


def withdraw_offer(
    session: Session, offer: SettlementOffer, *, role: str, actor: audit.Actor, reason: str
) -> SettlementOffer:
    """Take back an offer the debtor has not accepted (a supervisor rejecting a proposal, or
    an approved offer no longer on the table)."""
    if role not in APPROVERS:
        raise OfferError("only a supervisor or an admin can withdraw an offer")
    _locked(session, offer)
    if offer.status not in ("proposed", "approved"):
        raise OfferError(f"this offer is {offer.status}; only open offers can be withdrawn")
    if not reason or not reason.strip():
        raise OfferError("say why the offer is withdrawn")
    _set_status(session, offer, "withdrawn", actor=actor, reason=reason.strip()[:500])
    return offer


def accept_offer(
    session: Session, offer: SettlementOffer, *, actor: audit.Actor, today: dt.date, wording: str
) -> SettlementOffer:
    """The debtor accepts: the time and the words they agreed to are kept."""
    _locked(session, offer)
    if offer.status == "accepted":
        raise OfferError("this offer was already accepted")
    if offer.status != "approved":
        raise OfferError("this offer cannot be accepted")
    if offer.expires_on < today:
        raise OfferError("this offer has expired")
    case = session.get(Case, offer.case_id)
    if case.status not in OFFERABLE_CASE_STATUSES:
        raise OfferError("this account can no longer be settled")
    offer.accepted_at = utcnow()
    offer.status = "accepted"
    audit.record(
        session,
        actor,
        "settlement_offer",
        offer.id,
        "offer.accepted",
        case_id=offer.case_id,
        amount_cents=offer.amount_cents,
        expires_on=offer.expires_on.isoformat(),
        wording=wording,
        accepted_at=offer.accepted_at.isoformat(),
    )
    return offer


def expire_offers(session: Session, today: dt.date, *, actor: audit.Actor = audit.SYSTEM) -> int:
    """Mark every live offer past its date expired (run daily by a job or command)."""
    due = session.scalars(
        sa.select(SettlementOffer)
        .where(SettlementOffer.status.in_(LIVE), SettlementOffer.expires_on < today)
        .with_for_update(skip_locked=True)  # one being accepted right now is left to its owner
    ).all()
    for offer in due:
        _set_status(session, offer, "expired", actor=actor, reason="its date passed")
    return len(due)


def accepted_offer(session: Session, case_id: int) -> SettlementOffer | None:
    return session.scalar(
        sa.select(SettlementOffer)
        .where(SettlementOffer.case_id == case_id, SettlementOffer.status == "accepted")
        .order_by(SettlementOffer.id.desc())
    )


def has_accepted_offer(case_id) -> sa.ColumnElement[bool]:
    """SQL for "the case has an accepted offer" (`accepted_offer` would find one)."""
    return sa.exists().where(
        SettlementOffer.case_id == case_id, SettlementOffer.status == "accepted"
    )


def mark_paid(session: Session, offer: SettlementOffer, *, actor: audit.Actor) -> None:
    _locked(session, offer)
    if offer.status != "accepted":
        raise OfferError(f"this offer is {offer.status}; only an accepted offer is paid")
    _set_status(session, offer, "paid", actor=actor, reason="the settlement amount was paid")


def awaiting_approval(session: Session, today: dt.date) -> list[SettlementOffer]:
    return list(
        session.scalars(
            sa.select(SettlementOffer)
            .where(SettlementOffer.status == "proposed", SettlementOffer.expires_on >= today)
            .order_by(SettlementOffer.created_at)
        )
    )


# --- a client's self-service bands --------------------------------------------------------


def add_band(
    session: Session,
    client: Client,
    *,
    min_balance_cents: int,
    max_balance_cents: int | None,
    pay_bps: int,
    valid_days: int,
    actor: audit.Actor,
) -> OfferBand:
    if min_balance_cents < 0:
        raise OfferError("the lowest balance cannot be negative")
    if max_balance_cents is not None and max_balance_cents <= min_balance_cents:
        raise OfferError("the highest balance must be more than the lowest")
    if not client.min_settlement_bps <= pay_bps < 10000:
        raise OfferError(
            f"the debtor must pay at least the client's floor "
            f"({client.min_settlement_bps / 100:g}%) and less than 100%"
        )
    if not 1 <= valid_days <= MAX_EXPIRY_DAYS:
        raise OfferError(f"an offer can be open for 1 to {MAX_EXPIRY_DAYS} days")
    top = max_balance_cents if max_balance_cents is not None else float("inf")
    for band in bands_of(session, client.id):
        other_top = band.max_balance_cents if band.max_balance_cents is not None else float("inf")
        if min_balance_cents < other_top and band.min_balance_cents < top:
            raise OfferError("this band overlaps another band of the client")
    band = OfferBand(
        client_id=client.id,
        min_balance_cents=min_balance_cents,
        max_balance_cents=max_balance_cents,
        pay_bps=pay_bps,
        valid_days=valid_days,
    )
    session.add(band)
    session.flush()
    audit.record(
        session,
        actor,
        "client",
        client.id,
        "offer_band.added",
        band_id=band.id,
        min_balance_cents=min_balance_cents,
        max_balance_cents=max_balance_cents,
        pay_bps=pay_bps,
        valid_days=valid_days,
    )
    return band


def remove_band(session: Session, band: OfferBand, *, actor: audit.Actor) -> None:
    audit.record(
        session,
        actor,
        "client",
        band.client_id,
        "offer_band.removed",
        band_id=band.id,
        min_balance_cents=band.min_balance_cents,
        max_balance_cents=band.max_balance_cents,
        pay_bps=band.pay_bps,
    )
    session.delete(band)
    session.flush()


def bands_of(session: Session, client_id: int) -> list[OfferBand]:
    return list(
        session.scalars(
            sa.select(OfferBand)
            .where(OfferBand.client_id == client_id)
            .order_by(OfferBand.min_balance_cents)
        )
    )


def band_quote(session: Session, case: Case, today: dt.date) -> tuple[OfferBand, int, int] | None:
    """The self-service discount this case may take now: (band, amount, balance), or None
    when the case has no band, is not open to offers, or already has a live offer."""
    if case.status not in OFFERABLE_CASE_STATUSES:
        return None
    if session.scalar(
        sa.select(SettlementOffer.id).where(
            SettlementOffer.case_id == case.id,
            SettlementOffer.status.in_(LIVE),
            SettlementOffer.expires_on >= today,
        )
    ):
        return None
    return discount_on(session, case, balance_cents(session, case.id))


def discount_on(session: Session, case: Case, balance: int) -> tuple[OfferBand, int, int] | None:
    """The client's discount band for this balance, as band_quote gives it, for a caller
    that has the balance and knows the case is open to one with no live offer."""
    band = next((b for b in bands_of(session, case.client_id) if b.covers(balance)), None)
    if band is None or balance <= 0:
        return None
    client = session.get(Client, case.client_id)
    bps = max(band.pay_bps, client.min_settlement_bps)  # a floor raised later still holds
    amount = (balance * bps + 9999) // 10000  # rounded up: never under the share
    if amount >= balance:
        return None
    return band, amount, balance


def take_band_offer(
    session: Session, case: Case, *, today: dt.date, actor: audit.Actor, wording: str
) -> SettlementOffer:
    """The debtor takes the self-service discount: the offer is made and accepted at once."""
    quote = band_quote(session, case, today)
    if quote is None:
        raise OfferError("there is no discount to take on this account")
    band, amount, balance = quote
    for previous in session.scalars(
        sa.select(SettlementOffer).where(
            SettlementOffer.case_id == case.id, SettlementOffer.status.in_(LIVE)
        )
    ):  # only lapsed ones can be left (band_quote refused live ones)
        _set_status(session, previous, "expired", actor=actor, reason="its date passed")
    offer = SettlementOffer(
        case_id=case.id,
        amount_cents=amount,
        balance_cents=balance,
        expires_on=band_expiry(band, today, case),
        max_installments=1,
        status="approved",
        approved_at=utcnow(),
    )
    session.add(offer)
    session.flush()
    audit.record(
        session,
        actor,
        "settlement_offer",
        offer.id,
        "offer.proposed",
        case_id=case.id,
        amount_cents=amount,
        balance_cents=balance,
        expires_on=offer.expires_on.isoformat(),
        self_service=True,
        band_id=band.id,
        status="approved",
    )
    return accept_offer(session, offer, actor=actor, today=today, wording=wording)


def band_expiry(band: OfferBand, today: dt.date, case: Case) -> dt.date:
    """The day a self-service discount must be paid by: the band's days from today, but never
    before the validation period ends (SPEC §6.7)."""
    expiry = today + dt.timedelta(days=band.valid_days)
    earliest = earliest_payment_deadline(case, today)
    return max(expiry, earliest) if earliest is not None else expiry


def paid_toward(session: Session, offer: SettlementOffer) -> int:
    """What the debtor paid since the offer was made (payments less their reversals)."""
    return -session.scalar(
        sa.select(cents_sum(LedgerEntry.amount_cents)).where(
            LedgerEntry.case_id == offer.case_id,
            LedgerEntry.kind.in_(("payment", "direct_payment", "reversal")),
            LedgerEntry.created_at >= offer.created_at,
        )
    )
