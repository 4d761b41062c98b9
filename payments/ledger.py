"""Posting money to the ledger: payments, direct payments, reversals, with the agency's fee."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import Case, change_status
from cases.ledger import (
    KINDS,
    METHODS,
    PLACEMENT_COMPONENTS,
    DuplicatePosting,
    LedgerEntry,
    LedgerError,
    balance_cents,
    balances,
    post_placement,
)
from payments.fees import current_schedule, fee_cents

__all__ = [
    "KINDS",
    "METHODS",
    "PLACEMENT_COMPONENTS",
    "DuplicatePosting",
    "LedgerEntry",
    "LedgerError",
    "balance_cents",
    "balances",
    "new_external_id",
    "post_payment",
    "post_placement",
]


def post_payment(
    session: Session,
    case: Case,
    amount_cents: int,
    *,
    external_id: str,
    received_at: dt.date,
    method: str,
    actor: audit.Actor,
    direct: bool = False,
    memo: str | None = None,
) -> LedgerEntry:
    """Apply a payment received by the agency (or, `direct`, by the client) to a case."""
    if amount_cents <= 0:
        raise LedgerError("a payment amount must be positive")
    if method not in METHODS:
        raise LedgerError(f"method must be one of: {', '.join(METHODS)}")
    if not external_id or not external_id.strip():
        raise LedgerError("a payment needs its external id (check number, transaction id…)")
    external_id = external_id.strip()
    if session.scalar(sa.select(LedgerEntry.id).where(LedgerEntry.external_id == external_id)):
        raise DuplicatePosting(f"{external_id} was already posted")
    owed = balance_cents(session, case.id)
    if amount_cents > owed:
        raise LedgerError(
            f"the payment ({amount_cents / 100:.2f}) is more than the balance ({owed / 100:.2f})"
        )
    schedule = current_schedule(session, case.client_id)
    bps = schedule.rate_for(case.days_past_due_at_referral, case.in_legal) if schedule else 0
    entry = LedgerEntry(
        case_id=case.id,
        kind="direct_payment" if direct else "payment",
        amount_cents=-amount_cents,
        fee_bps=bps,
        fee_cents=fee_cents(amount_cents, bps),
        external_id=external_id,
        method=method,
        received_at=received_at,
        memo=memo,
        recorded_by_id=actor.user_id,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor,
        "ledger_entry",
        entry.id,
        f"{entry.kind}.posted",
        case_id=case.id,
        amount_cents=amount_cents,
        external_id=external_id,
    )
    if owed - amount_cents == 0 and case.status in ("new", "active", "plan", "disputed"):
        change_status(session, case, "paid", actor=actor, reason="balance paid in full")
    return entry


def new_external_id(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex}"
