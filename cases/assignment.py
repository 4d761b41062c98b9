"""Who works which case: assigning by hand, and spreading new cases across collectors."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit
from cases.case import OPEN_STATUSES, Case
from cases.users import User

WORKERS = ("collector", "supervisor")


class AssignmentError(ValueError):
    """An assignment was refused; the message says why."""


def assign(session: Session, case_ids: list[int], collector_id: int, *, actor: audit.Actor) -> int:
    collector = session.get(User, collector_id)
    if collector is None or not collector.active or collector.role not in WORKERS:
        raise AssignmentError("assign cases to an active collector or supervisor")
    if not case_ids:
        raise AssignmentError("choose at least one case")
    cases = session.scalars(sa.select(Case).where(Case.id.in_(case_ids))).all()
    for case in cases:
        if case.assigned_to_id != collector_id:
            audit.record(
                session,
                actor,
                "case",
                case.id,
                "case.assigned",
                case_id=case.id,
                **{"from": case.assigned_to_id, "to": collector_id},
            )
            case.assigned_to_id = collector_id
    return len(cases)


def round_robin(session: Session, *, actor: audit.Actor) -> dict[int, int]:
    """Give every open unassigned case to the active collector with the fewest open cases,
    one at a time, oldest referral first. Returns {collector id: cases given}."""
    collectors = session.scalars(
        sa.select(User).where(User.role == "collector", User.active).order_by(User.id)
    ).all()
    if not collectors:
        raise AssignmentError("there is no active collector to assign cases to")
    load = dict.fromkeys((c.id for c in collectors), 0)
    load.update(
        dict(
            session.execute(
                sa.select(Case.assigned_to_id, sa.func.count())
                .where(Case.assigned_to_id.in_(load), Case.status.in_(OPEN_STATUSES))
                .group_by(Case.assigned_to_id)
            ).all()
        )
    )
    given = dict.fromkeys(load, 0)
    unassigned = session.scalars(
        sa.select(Case)
        .where(
            Case.assigned_to_id.is_(None),
            Case.status.in_(OPEN_STATUSES),
            Case.program == "collection",  # early-out accounts are no collector's work
        )
        .order_by(Case.referred_on, Case.id)
    ).all()
    for case in unassigned:
        collector_id = min(load, key=lambda c: (load[c], c))
        case.assigned_to_id = collector_id
        load[collector_id] += 1
        given[collector_id] += 1
    if unassigned:
        audit.record(
            session,
            actor,
            "cases",
            "unassigned",
            "cases.round_robin",
            given={str(k): v for k, v in given.items()},
        )
    return given
