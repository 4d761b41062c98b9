"""The append-only audit trail: who changed what, when and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.model import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # "system", "debtor:<id>", "api", "cli": who acted when it was not a signed-in user.
    actor_label: Mapped[str] = mapped_column(sa.String(80), default="system")
    entity_type: Mapped[str] = mapped_column(sa.String(40))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(60))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),
        # What a user did today ("next case" moves past it: cases/queue_holds.py).
        sa.Index("ix_audit_events_actor_at", "actor_user_id", "at"),
    )


class Actor:
    """Who is acting: a user, or a named non-user (the system, a debtor, a command)."""

    def __init__(self, user_id: int | None = None, label: str = "system"):
        self.user_id = user_id
        self.label = label

    @classmethod
    def user(cls, user) -> Actor:
        return cls(user.id, f"user:{user.email}")

    def __repr__(self) -> str:
        return f"Actor({self.label})"


SYSTEM = Actor(None, "system")


def record(
    session: Session,
    actor: Actor,
    entity_type: str,
    entity_id: Any,
    action: str,
    *,
    case_id: int | None = None,
    reason: str | None = None,
    **detail: Any,
) -> AuditEvent:
    event_ = AuditEvent(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        entity_type=entity_type,
        entity_id=str(entity_id),
        case_id=case_id,
        action=action,
        reason=reason,
        detail=detail,
    )
    session.add(event_)
    return event_


def values(
    actor: Actor, action: str, *, reason: str | None = None, **detail: Any
) -> dict[str, Any]:
    """What happened, by whom, when: the columns of an audit row that do not name what it is
    about (`entity_type`, `entity_id`, `case_id`), as the bind parameters of `insert_from`, or
    made a whole row by `about` for `insert_rows`."""
    return {
        "a_at": utcnow(),
        "a_actor_user_id": actor.user_id,
        "a_actor_label": actor.label,
        "a_action": action,
        "a_reason": reason,
        "a_detail": detail,
    }


def about(
    values_: dict[str, Any], entity_type: str, entity_id: Any, case_id: int | None = None
) -> dict[str, Any]:
    """An audit row for `insert_rows`: its `values` and what it is about."""
    return {**values_, "entity_type": entity_type, "entity_id": str(entity_id), "case_id": case_id}


def row(
    actor: Actor,
    entity_type: str,
    entity_id: Any,
    action: str,
    *,
    case_id: int | None = None,
    reason: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """The event `record` would add, as a row for `insert_rows` (`about` its `values`)."""
    return about(values(actor, action, reason=reason, **detail), entity_type, entity_id, case_id)


# The columns `values` binds (as a_<name>, apart from every column's own name, so that they
# can sit in a larger statement beside others).
_VALUED = ("at", "actor_user_id", "actor_label", "action", "reason", "detail")
_ABOUT = ("entity_type", "entity_id", "case_id")


def _bound(name: str) -> sa.BindParameter:
    return sa.bindparam(f"a_{name}", type_=AuditEvent.__table__.c[name].type)


def insert_from(entity_type: str, entity_id: sa.ColumnElement, case_id: sa.ColumnElement):
    """An INSERT … SELECT of one audit row for each row that has these entity id and case id
    columns, the rest bound as `values` names them: no ORM flush, and it may be one part of a
    larger statement (the posting functions write a ledger entry and its audit row in one)."""
    return sa.insert(AuditEvent.__table__).from_select(
        [*_VALUED, *_ABOUT],
        sa.select(
            *(_bound(name).label(name[:2]) for name in _VALUED),
            sa.literal_column(f"'{entity_type}'"),
            sa.cast(entity_id, sa.String),
            case_id,
        ),
    )


# Built once: a statement's construction costs more CPU than its round trip to the database.
_INSERT = sa.insert(AuditEvent.__table__).values(
    {
        **{name: _bound(name) for name in _VALUED},
        **{name: sa.bindparam(name) for name in _ABOUT},
    }
)


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Audit rows (`row`, or `about` some `values`) written through the table in one INSERT:
    a batch's events in one statement, not one flushed object each."""
    if rows:
        session.execute(_INSERT, rows)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("audit events are append-only")
