"""Remittances: the agency paying a statement's net remittance to the client (or, when it is
negative, receiving what the client owes), and which ones came late."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cases import audit
from cases.ledger import amount_text, cents_sum
from cases.model import Base, Timestamped
from payments.statements import REMIT_WITHIN_DAYS, Statement, parse_month

REMIT_METHODS = ("ach", "wire", "check")


class Remittance(Timestamped, Base):
    """One payment settling all or part of a statement. `amount_cents` has the statement's
    sign: positive when paid to the client, negative when received from it."""

    __tablename__ = "remittances"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("statements.id"), index=True)
    paid_on: Mapped[dt.date]
    method: Mapped[str] = mapped_column(sa.String(10))
    reference: Mapped[str] = mapped_column(sa.String(80))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    statement: Mapped[Statement] = relationship()


class RemittanceError(ValueError):
    """A remittance was refused; the message says why."""


def remitted_on(session: Session, statement_id: int) -> int:
    return session.scalar(
        sa.select(cents_sum(Remittance.amount_cents)).where(Remittance.statement_id == statement_id)
    )


def left_to_settle(session: Session, statement: Statement) -> int:
    """What is still to pay on the statement (to the client if positive, from it if negative)."""
    return statement.net_remittance - remitted_on(session, statement.id)


def record_remittance(
    session: Session,
    statement: Statement,
    *,
    paid_on: dt.date,
    method: str,
    reference: str,
    amount_cents: int,
    today: dt.date,
    actor: audit.Actor,
) -> Remittance:
    """Record that (part of) a statement was settled. `amount_cents` is positive whichever way
    the money went. Raises RemittanceError, changing nothing, for bad input."""
    if method not in REMIT_METHODS:
        raise RemittanceError(f"method must be one of: {', '.join(REMIT_METHODS)}")
    reference = (reference or "").strip()
    if not reference or len(reference) > 80:
        raise RemittanceError("give the payment's reference (up to 80 characters)")
    if paid_on > today:
        raise RemittanceError("the date paid cannot be in the future")
    if paid_on < statement.period.start:
        raise RemittanceError(
            f"the date paid cannot be before the statement's month ({statement.month})"
        )
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise RemittanceError("the amount must be more than zero")
    session.execute(sa.select(Statement.id).where(Statement.id == statement.id).with_for_update())
    left = left_to_settle(session, statement)
    if left == 0:
        raise RemittanceError(f"{statement.number} is already settled")
    if amount_cents > abs(left):
        raise RemittanceError(
            f"the amount is more than the {amount_text(abs(left))} left to settle on "
            f"{statement.number}"
        )
    signed = amount_cents if left > 0 else -amount_cents
    remittance = Remittance(
        statement_id=statement.id,
        paid_on=paid_on,
        method=method,
        reference=reference,
        amount_cents=signed,
        recorded_by_id=actor.user_id,
    )
    session.add(remittance)
    session.flush()
    audit.record(
        session,
        actor,
        "statement",
        statement.id,
        "statement.remitted",
        number=statement.number,
        amount_cents=signed,
        paid_on=paid_on.isoformat(),
        method=method,
        reference=reference,
    )
    return remittance


@dataclass
class LateRemittance:
    """A statement settled, or still unsettled, more than 30 days after its month ended."""

    number: str
    due_on: dt.date
    settled_on: dt.date | None  # None: still not settled
    amount_cents: int


def late_remittances(session: Session, today: dt.date) -> dict[int, list[LateRemittance]]:
    """Per client id, its statements settled (or, by `today`, still not settled) more than
    30 days after their month ended. One query, whatever the number of statements."""
    paid = (
        sa.select(
            Remittance.statement_id,
            cents_sum(Remittance.amount_cents).label("total"),
            sa.func.max(Remittance.paid_on).label("last"),
        )
        .group_by(Remittance.statement_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            Statement.client_id,
            Statement.number,
            Statement.month,
            Statement.net_remittance,
            paid.c.total,
            paid.c.last,
        )
        .outerjoin(paid, paid.c.statement_id == Statement.id)
        .where(Statement.net_remittance != 0)
        .order_by(Statement.client_id, Statement.month)
    ).all()
    late: dict[int, list[LateRemittance]] = {}
    for client_id, number, month, net, total, last_paid in rows:
        due = parse_month(month).end + dt.timedelta(days=REMIT_WITHIN_DAYS)
        settled = (total or 0) == net
        if settled and last_paid > due:
            late.setdefault(client_id, []).append(LateRemittance(number, due, last_paid, net))
        elif not settled and today > due:
            late.setdefault(client_id, []).append(LateRemittance(number, due, None, net))
    return late


def settled_so_far(session: Session, statement_ids: list[int]) -> dict[int, int]:
    """Cents remitted so far against each of these statements."""
    rows = session.execute(
        sa.select(Remittance.statement_id, cents_sum(Remittance.amount_cents))
        .where(Remittance.statement_id.in_(statement_ids))
        .group_by(Remittance.statement_id)
    ).all()
    return dict(rows)
