"""What "next case" leaves aside for a collector: the cases they worked today or skipped with a
reason, until the agency's tomorrow or the callback time they set, whichever comes first."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases import audit
from cases.case import Case
from cases.model import Base, Timestamped

MAX_REASON = 500
# Audited in a user's name without working the case: a supervisor moving cases around.
NOT_WORK = ("case.assigned",)


class QueueHold(Timestamped, Base):
    """A case a collector skipped, with the reason, and when to call back (if they said)."""

    __tablename__ = "queue_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(MAX_REASON))
    callback_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.Index("ix_queue_holds_user_created", "user_id", "created_at"),)


class HoldError(ValueError):
    """A skip was refused; the message says why."""


def skip(
    session: Session,
    case: Case,
    *,
    user_id: int,
    reason: str,
    callback_at: dt.datetime | None,
    now: dt.datetime,
    actor: audit.Actor,
) -> QueueHold:
    """Set a case aside for this collector today, with the reason (and a callback time)."""
    reason = " ".join(reason.split())
    if not reason:
        raise HoldError("Say why you are skipping this case.")
    if len(reason) > MAX_REASON:
        raise HoldError(f"Keep the reason under {MAX_REASON} characters.")
    if callback_at is not None and callback_at <= now:
        raise HoldError("The callback time has passed: choose a time later than now.")
    hold = QueueHold(
        case_id=case.id, user_id=user_id, reason=reason, callback_at=callback_at, created_at=now
    )
    session.add(hold)
    session.flush()
    audit.record(
        session,
        actor,
        "case",
        case.id,
        "queue.skipped",
        case_id=case.id,
        reason=reason,
        callback_at=callback_at.isoformat() if callback_at else None,
    )
    return hold


def held_case_ids(
    session: Session, user_id: int, *, now: dt.datetime, day_started_at: dt.datetime
) -> set[int]:
    """The cases this user worked (anything audited in their name: a contact, a note, an
    offer, a skip…) since the agency's day began, except those whose callback time, set
    today, has come and found no work since."""
    touched = dict(
        session.execute(
            sa.select(audit.AuditEvent.case_id, sa.func.max(audit.AuditEvent.at))
            .where(
                audit.AuditEvent.actor_user_id == user_id,
                audit.AuditEvent.at >= day_started_at,
                audit.AuditEvent.case_id.is_not(None),
                audit.AuditEvent.action.not_in(NOT_WORK),
            )
            .group_by(audit.AuditEvent.case_id)
        ).all()
    )
    callbacks: dict[int, dt.datetime] = {}
    for case_id, callback_at in session.execute(
        sa.select(QueueHold.case_id, QueueHold.callback_at)
        .where(QueueHold.user_id == user_id, QueueHold.created_at >= day_started_at)
        .order_by(QueueHold.created_at, QueueHold.id)
    ):
        callbacks[case_id] = callback_at  # the latest skip says when
    return {
        case_id
        for case_id, last_worked in touched.items()
        if not _called_back(callbacks.get(case_id), last_worked, now)
    }


def _called_back(callback_at: dt.datetime | None, last_worked: dt.datetime, now: dt.datetime):
    return callback_at is not None and callback_at <= now and last_worked < callback_at


def skipped_today(
    session: Session, user_id: int, *, day_started_at: dt.datetime
) -> dict[int, QueueHold]:
    """This user's latest skip of each case today, by case id (for the queue to show)."""
    holds = session.scalars(
        sa.select(QueueHold)
        .where(QueueHold.user_id == user_id, QueueHold.created_at >= day_started_at)
        .order_by(QueueHold.created_at, QueueHold.id)
    ).all()
    return {hold.case_id: hold for hold in holds}
