"""Who works which case: assigning by hand, and spreading new cases across collectors."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cases import audit, report_totals
from cases.case import OPEN_STATUSES, Case
from cases.model import utcnow
from cases.users import User

WORKERS = ("collector", "supervisor")


def can_work(user: User | None) -> bool:
    return user is not None and user.active and user.role in WORKERS


def unassigned() -> sa.ColumnElement[bool]:
    """A case nobody can work: assigned to nobody, or to someone deactivated or no longer a
    collector or supervisor."""
    return sa.or_(
        Case.assigned_to_id.is_(None),
        Case.assigned_to_id.in_(
            sa.select(User.id).where(sa.or_(sa.not_(User.active), User.role.not_in(WORKERS)))
        ),
    )


class AssignmentError(ValueError):
    """An assignment was refused; the message says why."""


def assign(session: Session, case_ids: list[int], collector_id: int, *, actor: audit.Actor) -> int:
    if not can_work(session.get(User, collector_id)):
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
    unassigned_cases = session.scalars(
        sa.select(Case)
        .where(
            unassigned(),
            Case.status.in_(OPEN_STATUSES),
            Case.program == "collection",  # early-out accounts are no collector's work
        )
        .order_by(Case.referred_on, Case.id)
    ).all()
    for case in unassigned_cases:
        collector_id = min(load, key=lambda c: (load[c], c))
        case.assigned_to_id = collector_id
        load[collector_id] += 1
        given[collector_id] += 1
    if unassigned_cases:
        audit.record(
            session,
            actor,
            "cases",
            "unassigned",
            "cases.round_robin",
            given={str(k): v for k, v in given.items()},
        )
    return given


def assign_matching(
    session: Session, matching: sa.Select, collector_id: int, *, actor: audit.Actor, filters: dict
) -> int:
    """Assign every case `matching` selects (a query of cases, as the case list filters them)
    to one collector, in one statement, whatever its size; each case moved is audited."""
    if not can_work(session.get(User, collector_id)):
        raise AssignmentError("assign cases to an active collector or supervisor")
    ids = matching.with_only_columns(Case.id).where(
        Case.assigned_to_id.is_distinct_from(collector_id)
    )
    moved = session.execute(
        sa.select(Case.id, Case.assigned_to_id).where(Case.id.in_(ids)).with_for_update()
    ).all()
    if not moved:
        return 0
    report_totals.detach(session, [c for c, _ in moved])  # the reports' totals, old owners
    session.execute(
        sa.update(Case)
        .where(Case.id.in_(ids))
        .values(assigned_to_id=collector_id)
        .execution_options(synchronize_session=False)
    )
    report_totals.attach(session, [c for c, _ in moved])
    _audit_moves(session, actor, [(c, before, collector_id) for c, before in moved], "bulk")
    audit.record(
        session,
        actor,
        "cases",
        "matching",
        "cases.assigned_matching",
        to=collector_id,
        count=len(moved),
        filters=filters,
    )
    session.expire_all()
    return len(moved)


def hand_over(
    session: Session, user: User, to_id: int | None, *, actor: audit.Actor
) -> dict[int, int]:
    """Move a user's open cases, in one statement, to another active collector or supervisor
    (`to_id`), or round robin over the active collectors (`to_id` None), the least loaded
    first. Every case moved is audited. Returns {collector id: cases given}."""
    open_cases = (
        sa.select(Case.id)
        .where(Case.assigned_to_id == user.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.referred_on, Case.id)
    )
    case_ids = session.scalars(open_cases.with_for_update()).all()
    if to_id is not None:
        target = session.get(User, to_id)
        if target is None or target.id == user.id or not can_work(target):
            raise AssignmentError(
                f"{user.email}'s open cases can go only to another active collector or supervisor"
            )
        collectors = [target.id]
    else:
        collectors = _least_loaded_collectors(session, excluding=user.id)
        if not collectors and case_ids:
            raise AssignmentError(
                f"there is no other active collector to share {user.email}'s open cases"
            )
    if not case_ids:
        return {}
    slots = len(collectors)
    ranked = open_cases.add_columns(
        ((sa.func.row_number().over(order_by=(Case.referred_on, Case.id)) - 1) % slots).label(
            "slot"
        )
    ).order_by(None)
    ranked = ranked.subquery()
    new_owner = sa.case({slot: cid for slot, cid in enumerate(collectors)}, value=ranked.c.slot)
    report_totals.detach(session, case_ids)  # the reports' totals, old owner
    session.execute(
        sa.update(Case)
        .where(Case.id == ranked.c.id)
        .values(assigned_to_id=new_owner)
        .execution_options(synchronize_session=False)
    )
    report_totals.attach(session, case_ids)
    moves = [(cid, user.id, collectors[n % slots]) for n, cid in enumerate(case_ids)]
    _audit_moves(session, actor, moves, "hand-over")
    given = dict.fromkeys(collectors, 0)
    for _, _, to in moves:
        given[to] += 1
    audit.record(
        session,
        actor,
        "user",
        user.id,
        "user.cases_handed_over",
        given={str(k): v for k, v in given.items()},
        round_robin=to_id is None,
    )
    session.expire_all()
    return given


def _least_loaded_collectors(session: Session, *, excluding: int) -> list[int]:
    ids = session.scalars(
        sa.select(User.id).where(User.role == "collector", User.active, User.id != excluding)
    ).all()
    load = dict.fromkeys(ids, 0)
    load.update(
        session.execute(
            sa.select(Case.assigned_to_id, sa.func.count())
            .where(Case.assigned_to_id.in_(ids), Case.status.in_(OPEN_STATUSES))
            .group_by(Case.assigned_to_id)
        ).all()
    )
    return sorted(load, key=lambda c: (load[c], c))


def _audit_moves(session: Session, actor: audit.Actor, moves: list, how: str) -> None:
    """One audit event per case moved, written in one batch."""
    at = utcnow()
    session.execute(
        sa.insert(audit.AuditEvent),
        [
            {
                "at": at,
                "actor_user_id": actor.user_id,
                "actor_label": actor.label,
                "entity_type": "case",
                "entity_id": str(case_id),
                "case_id": case_id,
                "action": "case.assigned",
                "reason": None,
                "detail": {"from": before, "to": to, "how": how},
            }
            for case_id, before, to in moves
        ],
    )


def open_case_count(session: Session, user_id: int) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Case)
        .where(Case.assigned_to_id == user_id, Case.status.in_(OPEN_STATUSES))
    )
