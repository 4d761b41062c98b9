"""Money that arrived without a case it could be matched to: kept, listed, and assigned."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case
from cases.ledger import amount_text
from cases.model import Base, Timestamped, utcnow
from payments.posting import (
    DuplicatePosting,
    LedgerEntry,
    LedgerError,
    check_received_at,
    post_instrument,
    post_payment,
)


class UnmatchedPayment(Timestamped, Base):
    __tablename__ = "unmatched_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The same identity the ledger entry will carry once matched: it cannot be posted twice.
    external_id: Mapped[str] = mapped_column(sa.String(120), unique=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    received_at: Mapped[dt.date]
    method: Mapped[str] = mapped_column(sa.String(10))
    payer: Mapped[str] = mapped_column(sa.String(300), default="")
    details: Mapped[str] = mapped_column(sa.Text, default="")  # what came with it
    status: Mapped[str] = mapped_column(sa.String(10), default="open")  # open, matched
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id"))
    matched_at: Mapped[dt.datetime | None]
    matched_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


def hold_unmatched(
    session: Session,
    *,
    external_id: str,
    amount_cents: int,
    received_at: dt.date,
    method: str,
    payer: str = "",
    details: str = "",
    actor: audit.Actor,
    today: dt.date | None = None,
) -> UnmatchedPayment:
    """Keep money we could not place (never silently dropped); idempotent per external id.
    Money dated after `today` (the agency's day), and amounts that are not a positive number
    of cents, are refused."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise LedgerError("an amount must be a positive number of cents")
    check_received_at(received_at, today)
    existing = session.scalar(
        sa.select(UnmatchedPayment).where(UnmatchedPayment.external_id == external_id)
    )
    if existing is not None:
        return existing
    if session.scalar(sa.select(LedgerEntry.id).where(LedgerEntry.external_id == external_id)):
        raise DuplicatePosting(f"{external_id} was already posted")
    item = UnmatchedPayment(
        external_id=external_id,
        amount_cents=amount_cents,
        received_at=received_at,
        method=method,
        payer=payer[:300],
        details=details,
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        actor,
        "unmatched_payment",
        item.id,
        "unmatched.received",
        amount_cents=amount_cents,
        external_id=external_id,
    )
    return item


def match(
    session: Session,
    item: UnmatchedPayment,
    parts: Case | list[tuple[Case, int]],
    *,
    actor: audit.Actor,
) -> list[LedgerEntry]:
    """Post an unmatched payment to the case it belongs to, or split it across several of one
    debtor's cases (`parts`: each case with its share, adding up to the payment). A check
    takes its payer's identity now: the same check already posted for that debtor, by any
    path, is refused as a duplicate."""
    if item.status != "open":
        raise LedgerError("this payment was already matched")
    if isinstance(parts, Case):
        parts = [(parts, item.amount_cents)]
    if any(not isinstance(cents, int) or cents <= 0 for _, cents in parts):
        raise LedgerError("each share must be a positive amount")
    if sum(cents for _, cents in parts) != item.amount_cents:
        raise LedgerError(
            f"the shares add up to {amount_text(sum(c for _, c in parts))}, "
            f"not the {amount_text(item.amount_cents)} received"
        )
    memo = f"matched from unmatched payment {item.id}"
    if item.method == "card":  # a Stripe payment keeps its PaymentIntent id, on one case
        if len(parts) != 1:
            raise LedgerError("a card payment goes to one case")
        entries = [
            post_payment(
                session,
                parts[0][0],
                item.amount_cents,
                external_id=item.external_id,
                received_at=item.received_at,
                method=item.method,
                actor=actor,
                memo=memo,
                allow_overpayment=True,
            )
        ]
    else:
        prefix = f"{item.method}:"
        number = item.external_id.removeprefix(prefix)
        entries = post_instrument(
            session,
            parts,
            method=item.method,
            number=number,
            received_at=item.received_at,
            actor=actor,
            memo=memo,
            allow_overpayment=True,
        )
    entry = entries[0]
    case = session.get(Case, entry.case_id)
    item.status = "matched"
    item.entry_id = entry.id
    item.matched_at = utcnow()
    item.matched_by_id = actor.user_id
    audit.record(
        session,
        actor,
        "unmatched_payment",
        item.id,
        "unmatched.matched",
        case_id=case.id,
        entries=[e.id for e in entries],
    )
    return entries
