"""The case lifecycle (SPEC §3): one function knows the allowed moves, and audits each."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cases import audit
from cases.audit import AuditEvent
from cases.case import TRANSITIONS, TransitionError, change_status, next_references

ACTOR = audit.Actor(None, "test")


def test_references_are_sequential_per_month(db_session):
    november = next_references(db_session, dt.date(2026, 11, 2), 3)
    assert november == ["RC-2611-00001", "RC-2611-00002", "RC-2611-00003"]
    assert next_references(db_session, dt.date(2026, 11, 30)) == ["RC-2611-00004"]
    assert next_references(db_session, dt.date(2026, 12, 1)) == ["RC-2612-00001"]


def test_the_lifecycle_path_and_its_audit_trail(db_session, make_client, make_case):
    case = make_case(make_client())
    for status in ("active", "plan", "active", "disputed", "active"):
        change_status(db_session, case, status, actor=ACTOR, reason=f"to {status}")
    change_status(
        db_session, case, "closed", actor=ACTOR, reason="client recalled", close_reason="recalled"
    )
    assert case.status == "closed" and case.close_reason == "recalled"
    assert case.open_account_number is None
    events = db_session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.action == "case.status_changed")
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.detail["from"], e.detail["to"]) for e in events] == [
        ("new", "active"),
        ("active", "plan"),
        ("plan", "active"),
        ("active", "disputed"),
        ("disputed", "active"),
        ("active", "closed"),
    ]
    assert events[-1].reason == "client recalled"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("paid", "plan"),
        ("settled", "disputed"),
        ("closed", "paid"),
        ("new", "plan"),
        ("paid", "closed"),
    ],
)
def test_moves_the_lifecycle_does_not_allow_are_refused(
    db_session, make_client, make_case, start, target
):
    case = make_case(make_client(), status=start)
    assert target not in TRANSITIONS[start]
    with pytest.raises(TransitionError, match=f"a {start} case cannot become {target}"):
        change_status(
            db_session,
            case,
            target,
            actor=ACTOR,
            reason="try",
            close_reason="recalled" if target == "closed" else None,
        )
    assert case.status == start


def test_closing_needs_a_known_reason_and_any_change_a_why(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    with pytest.raises(TransitionError, match="closing needs a reason"):
        change_status(db_session, case, "closed", actor=ACTOR, reason="x", close_reason="bored")
    with pytest.raises(TransitionError, match="needs a reason"):
        change_status(db_session, case, "plan", actor=ACTOR, reason="  ")
    assert case.status == "active"


def test_account_numbers_are_unique_per_client_among_open_cases(db_session, make_client, make_case):
    acme = make_client()
    first = make_case(acme, account_number="A-1")
    change_status(db_session, first, "closed", actor=ACTOR, reason="dup", close_reason="duplicate")
    make_case(acme, account_number="A-1")  # the first is closed: allowed
    make_case(make_client("OTHER", "Other"), account_number="A-1")  # another client: allowed
    with pytest.raises(IntegrityError):
        with db_session.begin_nested():
            make_case(acme, account_number="A-1")


def test_audit_events_are_append_only(db_session):
    event = audit.record(db_session, ACTOR, "test", 1, "test.done")
    db_session.flush()
    event.action = "changed"
    with pytest.raises(RuntimeError, match="append-only"):
        db_session.flush()
    db_session.rollback()
